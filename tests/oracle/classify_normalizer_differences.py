#!/usr/bin/env python3
"""Writes tests/oracle/normalizer_differences.tsv: every code point where this project's normalizer
(utf8proc 2.8, Unicode 15.0) and tokenizers' BertNormalizer (pinned in scripts/requirements.txt)
differ, with the Unicode-version reason for each. Stops on a difference no rule explains.

  BERT_ORACLE_DIFFERENCES_OUT=/tmp/d build/tests/wordpiece/tokenizers_oracle_test \\
      --gtest_filter='*Normalizer*'          # writes /tmp/d.uncased, /tmp/d.cased, /tmp/d.lowercase
  .venv/bin/python tests/oracle/classify_normalizer_differences.py /tmp/d > tests/oracle/normalizer_differences.tsv

Facts the rules rest on (Python's unicodedata is Unicode 14.0; `ucd_3_2_0` is 3.2):
- tokenizers lowercases with Rust's core tables (Unicode 16.0); utf8proc 2.8 has 15.0.
- tokenizers' strip_accents removes Mn by the `unicode_categories` crate, whose tables predate many
  marks (and still call U+1734 Mn, which Unicode 14.0 made Mc); utf8proc strips by its 15.0 data.
- tokenizers' NFD (the `unicode-normalization` crate) does not decompose U+11938 (Dives Akuru,
  Unicode 13.0); utf8proc does.
"""
import sys
import unicodedata as ud

from tokenizers import normalizers


def reason(mode, cp, ours, hf):
    c = chr(cp)
    cat14 = ud.category(c)
    if ours == c and hf != c and cat14 == "Cn" and mode in ("uncased", "lowercase") and hf == hf.lower():
        return "case pair new in Unicode 16.0: tokenizers lowercases it (Rust core tables, 16.0); utf8proc 2.8 (15.0) does not know it"
    if mode != "uncased":
        return None
    if ours == "" and hf == c and cat14 == "Mn":
        return ("nonspacing mark (Mn in Unicode 14.0%s): we strip it; tokenizers' unicode_categories tables do not list it as Mn"
                % (", absent in 3.2" if ud.ucd_3_2_0.category(c) == "Cn" else ", " + ud.ucd_3_2_0.category(c) + " in 3.2"))
    if ours == "" and hf == c and cat14 == "Cn":
        return "nonspacing mark new in Unicode 15.0 (utf8proc 2.8 knows it, tokenizers' tables do not): we strip it, tokenizers keeps it"
    if ours == c and hf == "" and cat14 == "Mc" and ud.ucd_3_2_0.category(c) == "Mn":
        return "Mn until Unicode 13.0, Mc since 14.0: tokenizers' older tables strip it as an accent, utf8proc keeps it"
    if ud.decomposition(c) and hf == c and normalizers.NFD().normalize_str(c) == c:
        parts = [chr(int(x, 16)) for x in ud.decomposition(c).split()]
        if ours == "".join(parts):
            return "canonical decomposition (Unicode 13.0) that tokenizers' NFD does not apply and utf8proc does"
    return None


def main(prefix):
    print("# mode\tcode point\tours (utf-8 hex)\ttokenizers (utf-8 hex)\treason")
    print("# written by tests/oracle/classify_normalizer_differences.py; read by tests/oracle/tokenizers_oracle_test.cc")
    unexplained = 0
    for mode in ("uncased", "cased", "lowercase"):
        for line in open(f"{prefix}.{mode}", encoding="ascii"):
            m, cp_hex, ours_hex, hf_hex = line.rstrip("\n").split("\t")
            ours, hf = bytes.fromhex(ours_hex).decode(), bytes.fromhex(hf_hex).decode()
            why = reason(m, int(cp_hex, 16), ours, hf)
            if why is None:
                unexplained += 1
                print(f"unexplained: {m} U+{cp_hex}: ours {ours_hex}, tokenizers {hf_hex}", file=sys.stderr)
                continue
            print(f"{m}\t{cp_hex}\t{ours_hex}\t{hf_hex}\t{why}")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

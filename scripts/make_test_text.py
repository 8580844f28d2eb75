#!/usr/bin/env python3
"""Writes data/testdata/multilingual.txt: a deterministic mix of English, Polish, German, French,
Vietnamese, Turkish, Greek, CJK, emoji, punctuation, numbers, control and zero-width characters,
combining sequences and very long words, for the tokenizer oracle tests. Usage:
    python scripts/make_test_text.py [OUT] [LINES]"""
import random
import sys

EN = ("the quick brown fox jumps over the lazy dog while researchers tokenize unbelievably "
      "long sentences about pretraining transformers on commodity hardware and it isn't "
      "obvious what they'd say about you're we've I'm don't won't couldn't").split()
PL = "Żółć gęślą jaźń zażółć łódź Źdźbło ŚWIĘTY Łukasz pójdź kińże tę chmurność w głąb flaszy".split()
DE = "Straße Größe Übermaß Fußgängerübergänge ÄRGER Öl über müßig Donaudampfschifffahrt".split()
FR = "Noël élève garçon façade déjà-vu Œuvre cœur naïve Hélène À bientôt l'été où".split()
VI = "Tiếng Việt Nguyễn Đặng Phạm người đường phố Hà Nội Thủy điện Quốc ngữ ước mơ".split()
MISC = ["İstanbul", "ΣΊΣΥΦΟΣ", "Οδυσσεύς", "ὀδυσσεύς", "Ωμέγα", "ﬁnance", "Ａｌｐｈａ", "①②", "Ⅻ",
        "naïve", "cafe\u0301", "n\u0303o", "a\u0323\u0302", "\u1e9e", "ǅemal", "Ǆ", "ﬀ"]
CJK = ["我爱北京天安门", "東京都", "日本語のテキスト", "한국어 문장", "中文，标点。", "漢字かな交じり文",
       "\U00020000\U0002A6D6", "豈更車"]
EMOJI = ["😀", "👍🏽", "👨\u200d👩\u200d👧", "🇵🇱", "❤️", "🤖", "☕", "✨", "🎉🎉"]
PUNCT = [".", ",", "!", "?", "...", "—", "–", "«", "»", "„", "“", "”", "(", ")", "[", "]", "{", "}",
         "@", "#", "$", "%", "^", "&", "*", "_", "~", "`", "|", "\\", "/", ";", ":", "'", '"',
         "¿", "¡", "§", "¶", "†", "‰", "′", "、", "。", "・", "<", ">", "=", "+"]
NUMS = ["0", "42", "3.14159", "1,000,000", "2024-01-31", "12:30", "-7", "1e-9", "٣٤", "१२३", "½"]
ODD = ["\u200b", "\u200c", "\u200d", "\ufeff", "\u00ad", "\u0007", "\u001b", "\t", "\u000b",
       "\u000c", "\u0085", "\u00a0", "\u2028", "\u3000", "\u2003", "\x7f", "\u202e", "\ufffd",
       "\ue000", "\U000f0000"]
ALL = [EN, PL, DE, FR, VI, MISC, CJK, EMOJI]


def long_word(rng):
    base = rng.choice(["super", "anti", "über", "żółć", "xyz", "ab"])
    return base * rng.randint(20, 60)


def line(rng):
    kind = rng.random()
    if kind < 0.03:
        return ""
    n = rng.randint(1, 25)
    parts = []
    for _ in range(n):
        r = rng.random()
        if r < 0.55:
            lang = rng.choice(ALL)
            w = rng.choice(lang)
            if rng.random() < 0.15:
                w = w.upper()
            elif rng.random() < 0.15:
                w = w.capitalize()
            parts.append(w)
        elif r < 0.72:
            parts.append(rng.choice(PUNCT))
        elif r < 0.82:
            parts.append(rng.choice(NUMS))
        elif r < 0.92:
            parts.append(rng.choice(ODD))
        elif r < 0.95:
            parts.append(long_word(rng))
        else:  # glue two words without a space, or a word with embedded punctuation
            parts.append(rng.choice(rng.choice(ALL)) + rng.choice(PUNCT + ["", "-"]) + rng.choice(EN))
    sep = " " if rng.random() < 0.8 else rng.choice(["  ", " \u00a0", "\t", ""])
    return sep.join(parts)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "data/testdata/multilingual.txt"
    lines = int(sys.argv[2]) if len(sys.argv) > 2 else 2500
    rng = random.Random(20240131)
    text = "\n".join(line(rng) for _ in range(lines)) + "\n"
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


if __name__ == "__main__":
    main()

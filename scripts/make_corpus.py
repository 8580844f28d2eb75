#!/usr/bin/env python3
"""Builds the project's real corpus from public-domain English prose shipped in Debian packages:
the King James Bible (bible-kjv-text, read with its `bible` program) and Jane Austen's six novels
(r-cran-janeaustenr, exported with Rscript). Output in Google BERT's format -- one sentence per line,
a blank line between documents (a Bible chapter or a novel chapter) -- split by document into
train.txt and valid.txt (every 20th document held out). Deterministic: same packages, same bytes.

usage: make_corpus.py OUT_DIR
"""
import os
import re
import subprocess
import sys

# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) before whitespace and an
# uppercase letter or an opening quote. Good enough for 19th-century prose; abbreviations are rare.
SENTENCE_END = re.compile(r'(?<=[.!?])["\'\u2019\u201d)\]]*\s+(?=["\'\u2018\u201c(\[]?[A-Z])')
ABBREV = re.compile(r'\b(Mr|Mrs|Dr|St|Col|Capt|Gen|Sir)\.$')


def split_sentences(paragraph):
    paragraph = re.sub(r'\s+', ' ', paragraph).strip()
    if not paragraph:
        return []
    parts, out = SENTENCE_END.split(paragraph), []
    for part in parts:
        part = part.strip()
        if not part:
            continue
        if out and ABBREV.search(out[-1]):
            out[-1] += ' ' + part  # "Mr. Darcy": not a sentence end
        else:
            out.append(part)
    return out


def run_program(argv, package):
    """stdout of argv; a missing program stops with one line naming its Debian package."""
    try:
        return subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    except FileNotFoundError:
        sys.exit(f'make_corpus: program {argv[0]!r} not found: install the Debian package {package} '
                 f'(scripts/setup.sh does)')
    except subprocess.CalledProcessError as e:
        sys.exit(f'make_corpus: {argv[0]} failed with exit code {e.returncode}: {e.stderr.strip()[:500]}')


def bible_documents():
    text = run_program(['bible', '-l100000', 'gen1:1-rev22:21'], 'bible-kjv')
    doc = []
    for line in text.splitlines():
        verse = re.match(r'^\s*\d+\s+(.*)$', line)
        if verse:
            doc.extend(split_sentences(verse.group(1)))
        elif line.strip():  # "Genesis 1": a new chapter starts a new document
            if doc:
                yield doc
            doc = []
    if doc:
        yield doc


def austen_documents():
    script = ('library(janeaustenr); b <- austen_books(); '
              'writeLines(paste(as.character(b$book), b$text, sep="\\t"))')
    text = run_program(['Rscript', '-e', script], 'r-cran-janeaustenr')
    doc, paragraph, book = [], [], None

    def flush_paragraph():
        if paragraph:
            doc.extend(split_sentences(' '.join(paragraph)))
            paragraph.clear()

    for line in text.splitlines():
        name, _, body = line.partition('\t')
        is_chapter = re.match(r'^\s*(CHAPTER|Chapter)\s+[0-9IVXLC]+', body) is not None
        if name != book or is_chapter:
            flush_paragraph()
            if len(doc) > 1:
                yield doc
            doc, book = [], name
            continue
        if body.strip():
            paragraph.append(body.strip())
        else:
            flush_paragraph()
    flush_paragraph()
    if len(doc) > 1:
        yield doc


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    docs = list(bible_documents()) + list(austen_documents())
    if not docs:
        sys.exit('make_corpus: no text read; are bible-kjv-text and r-cran-janeaustenr installed?')
    paths = {name: os.path.join(out_dir, name + '.txt') for name in ('train', 'valid')}
    files = {name: open(path + '.tmp', 'w', encoding='utf-8') for name, path in paths.items()}
    counts = {name: [0, 0] for name in paths}
    for i, doc in enumerate(docs):
        name = 'valid' if i % 20 == 19 else 'train'
        files[name].write('\n'.join(doc) + '\n\n')
        counts[name][0] += 1
        counts[name][1] += len(doc)
    for name, f in files.items():
        f.flush()
        os.fsync(f.fileno())
        f.close()
        os.replace(paths[name] + '.tmp', paths[name])
        size = os.path.getsize(paths[name])
        print(f'{paths[name]}: {counts[name][0]} documents, {counts[name][1]} sentences, '
              f'{size / 1e6:.1f} MB')


if __name__ == '__main__':
    main()

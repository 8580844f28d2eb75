#!/usr/bin/env python3
"""A small labelled sentence-classification task from the corpus's own Debian packages: Jane Austen
sentences labelled by the novel they come from (6 classes: "Emma", "Mansfield Park", "Northanger
Abbey", "Persuasion", "Pride & Prejudice", "Sense & Sensibility", janeaustenr's book names), for
`bert-eval finetune`.

The documents and sentences are exactly make_corpus.py's (imported from this folder: same export,
same chapter split, same sentence splitter), and so is its held-out split: all documents = Bible
chapters then Austen chapters, document i goes to valid.txt when i % 20 == 19. Test sentences come
only from those held-out Austen chapters, training sentences only from the other Austen chapters, so
a model pre-trained on make_corpus.py's train.txt never saw a test sentence (a held-out sentence whose
exact text also occurs in a pre-training document is dropped as well, as is any repeat).

Only sentences of at least --min-words words (default 6) are kept. Classes are balanced by per-class
caps: --per-class-train N (default 300) and --per-class-test M (default 100) sentences, drawn at
random with --seed; a class with fewer held-out sentences than M contributes all it has (reported).
Output: OUT_DIR/austen_train.tsv and OUT_DIR/austen_test.tsv, a header line `text<TAB>label`, rows in
a seeded random order, each written atomically (tmp + fsync + rename). Deterministic: same packages,
same arguments, same bytes.

usage: make_labelled_data.py OUT_DIR [--per-class-train N] [--per-class-test M] [--seed S]

  .venv/bin/python scripts/make_labelled_data.py data/labelled
  build/src/cli/bert-eval finetune --checkpoint runs/quickstart --train data/labelled/austen_train.tsv \\
      --test data/labelled/austen_test.tsv --max-seq-len 64 --baseline
"""
import argparse
import os
import random
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_corpus  # noqa: E402  (the same folder)

PROGRAMS = (('bible', 'bible-kjv'), ('Rscript', 'r-cran-janeaustenr'))


def austen_documents_by_book():
    """make_corpus.austen_documents(), each document with its novel: [(book, [sentence, ...]), ...].

    make_corpus yields the documents without the novel's name, so the export is read once through
    make_corpus's own code, then each novel's lines are fed to austen_documents() on their own; the
    concatenation must be exactly the documents of the whole export (checked)."""
    captured = {}
    real_run_program = make_corpus.run_program

    def capture(argv, package):
        captured['text'] = real_run_program(argv, package)
        return captured['text']

    def replay(lines):
        return lambda argv, package: '\n'.join(lines) + '\n'

    try:
        make_corpus.run_program = capture
        whole = list(make_corpus.austen_documents())
        books, lines_of = [], {}
        for line in captured['text'].splitlines():
            name = line.partition('\t')[0]
            if name not in lines_of:
                books.append(name)
                lines_of[name] = []
            lines_of[name].append(line)
        out = []
        for book in books:
            make_corpus.run_program = replay(lines_of[book])
            out += [(book, doc) for doc in make_corpus.austen_documents()]
    finally:
        make_corpus.run_program = real_run_program
    if [doc for _, doc in out] != whole:
        sys.exit('make_labelled_data: the per-novel documents differ from make_corpus.py\'s; '
                 'the split below would not be its split')
    return out


def write_tsv(path, rows):
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8', newline='\n') as f:
        f.write('text\tlabel\n')
        for text, label in rows:
            f.write(f'{text}\t{label}\n')
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('out_dir')
    ap.add_argument('--per-class-train', type=int, default=300, help='training sentences per novel (cap)')
    ap.add_argument('--per-class-test', type=int, default=100, help='test sentences per novel (cap)')
    ap.add_argument('--min-words', type=int, default=6, help='shortest sentence kept, in words')
    ap.add_argument('--seed', type=int, default=42, help='seed of the sampling and of the row order')
    a = ap.parse_args()
    if a.per_class_train < 1 or a.per_class_test < 1 or a.min_words < 1:
        sys.exit('make_labelled_data: --per-class-train, --per-class-test and --min-words must be >= 1')
    for program, package in PROGRAMS:
        if shutil.which(program) is None:
            sys.exit(f'make_labelled_data: program {program!r} not found: install the Debian package {package} '
                     f'(scripts/setup.sh does)')

    n_bible = sum(1 for _ in make_corpus.bible_documents())
    austen = austen_documents_by_book()
    if n_bible == 0 or not austen:
        sys.exit('make_labelled_data: no text read; are bible-kjv-text and r-cran-janeaustenr installed?')

    # Every sentence pre-training saw (make_corpus.py's train.txt), to keep them out of the test set.
    seen = set()
    for i, doc in enumerate(make_corpus.bible_documents()):
        if i % 20 != 19:
            seen.update(doc)
    for j, (_, doc) in enumerate(austen):
        if (n_bible + j) % 20 != 19:
            seen.update(doc)

    books = sorted({book for book, _ in austen})
    pool = {split: {book: [] for book in books} for split in ('train', 'test')}
    held_docs = {book: 0 for book in books}
    taken = {'train': set(), 'test': set()}
    for j, (book, doc) in enumerate(austen):
        split = 'test' if (n_bible + j) % 20 == 19 else 'train'
        held_docs[book] += split == 'test'
        for s in doc:
            s = s.replace('\t', ' ')
            if len(s.split()) < a.min_words or s in taken[split]:
                continue
            if split == 'test' and s in seen:
                continue
            taken[split].add(s)
            pool[split][book].append(s)

    caps = {'train': a.per_class_train, 'test': a.per_class_test}
    os.makedirs(a.out_dir, exist_ok=True)
    counts, short = {}, []
    for split in ('train', 'test'):
        rows = []
        for book in books:
            cands = pool[split][book]
            rng = random.Random(f'{a.seed}:{split}:{book}')
            pick = rng.sample(cands, min(caps[split], len(cands)))
            if len(pick) < caps[split]:
                short.append(f'{split} {book!r}: {len(pick)} of {caps[split]} (all it has)')
            rows += [(s, book) for s in pick]
            counts[(split, book)] = (len(pick), len(cands))
        random.Random(f'{a.seed}:{split}:order').shuffle(rows)
        write_tsv(os.path.join(a.out_dir, f'austen_{split}.tsv'), rows)

    print(f'{len(austen)} Austen chapters after {n_bible} Bible chapters; held out (i % 20 == 19): '
          f'{sum(held_docs.values())}')
    print(f'{"novel":<22}{"held-out ch.":>13}{"train":>8}{"of":>7}{"test":>7}{"of":>6}')
    for book in books:
        tr, te = counts[('train', book)], counts[('test', book)]
        print(f'{book:<22}{held_docs[book]:>13}{tr[0]:>8}{tr[1]:>7}{te[0]:>7}{te[1]:>6}')
    total = {split: sum(counts[(split, b)][0] for b in books) for split in ('train', 'test')}
    print(f'{"total":<22}{"":>13}{total["train"]:>8}{"":>7}{total["test"]:>7}')
    for line in short:
        print(f'note: {line}')
    for split in ('train', 'test'):
        path = os.path.join(a.out_dir, f'austen_{split}.tsv')
        print(f'{path}: {total[split]} sentences, {os.path.getsize(path) / 1e3:.1f} kB')


if __name__ == '__main__':
    main()

"Tests of the `salt_score` command, run as a subprocess on small CSVs."
from conftest import run_cli
import numpy as np, pandas as pd, pytest
from salt_nb.data import TILE, rle_encode


def run_score(tmp_path, *args):
    "Run salt_score with `args`; return the CompletedProcess (text output)."
    return run_cli('salt_score', tmp_path, *args)


def score_of(out: str) -> float:
    "The number printed on the `score ...` line."
    return float([l for l in out.splitlines() if l.startswith('score ')][-1].split()[1])


def write_csv(path, ids, masks_or_rles):
    "Write an id,rle_mask CSV; items may be masks or RLE strings."
    rles = [m if isinstance(m, str) else rle_encode(m) for m in masks_or_rles]
    pd.DataFrame(dict(id=ids, rle_mask=rles)).to_csv(path, index=False)
    return path


@pytest.fixture
def truth(tmp_path):
    "Four tiles: empty, top half salt, a 10x10 square, all salt."
    t = np.zeros((4, TILE, TILE), bool)
    t[1, :50] = True; t[2, 10:20, 10:20] = True; t[3] = True
    return t, write_csv(tmp_path/'truth.csv', list('abcd'), t)


def test_perfect_prediction(tmp_path, truth):
    t, truth_csv = truth
    r = run_score(tmp_path, truth_csv, truth_csv)
    assert r.returncode == 0, r.stderr
    assert score_of(r.stdout) == 1.0
    assert 'scored 4 of 4 predictions' in r.stdout


def test_partial(tmp_path, truth):
    t, truth_csv = truth
    p = t.copy()
    p[0, 0, 0] = True            # empty truth, one predicted pixel: 0
    p[2, 10:20, 10:15] = False   # IoU exactly 0.5: 0 (not a hit at 0.50)
    p[3] = False                 # empty prediction on an all-salt tile: 0, not 1
    r = run_score(tmp_path, write_csv(tmp_path/'pred.csv', list('abcd'), p), truth_csv)
    assert r.returncode == 0, r.stderr
    assert score_of(r.stdout) == pytest.approx(0.25, abs=1e-12)
    p = t.copy(); p[2, 10:20, 10:18] = False   # IoU 0.2 -> 0; other three perfect
    p[1, :40] = False                          # IoU 10/50 = 0.2 -> 0
    p[3, :19] = False                          # IoU 82/101 = 0.8119 -> 0.50..0.80 hit: 0.7
    r = run_score(tmp_path, write_csv(tmp_path/'pred2.csv', list('abcd'), p), truth_csv)
    assert score_of(r.stdout) == pytest.approx((1 + 0 + 0 + 0.7) / 4, abs=1e-12)


def test_by_class(tmp_path, truth):
    t, truth_csv = truth
    r = run_score(tmp_path, truth_csv, truth_csv, '--by_class')
    assert r.returncode == 0, r.stderr
    assert 'class' in r.stdout and 'images' in r.stdout
    rows = [l.split() for l in r.stdout.splitlines() if l.split() and l.split()[0] in ('0', '1', '5', '10')]
    assert [row[0] for row in rows] == ['0', '1', '5', '10']   # coverage classes of the four truths


def test_malformed_rle(tmp_path, truth):
    t, truth_csv = truth
    pred = write_csv(tmp_path/'pred.csv', list('abcd'), ['', '1 5 3', '', ''])
    r = run_score(tmp_path, pred, truth_csv)
    assert r.returncode != 0
    assert 'pred.csv: id b: malformed RLE' in r.stderr
    assert 'Traceback' not in r.stderr


def test_missing_prediction(tmp_path, truth):
    t, truth_csv = truth
    pred = write_csv(tmp_path/'pred.csv', list('ab'), t[:2])
    r = run_score(tmp_path, pred, truth_csv)
    assert r.returncode != 0
    assert '2 truth ids have no prediction, e.g. c, d' in r.stderr


def test_bad_columns_and_duplicates(tmp_path, truth):
    t, truth_csv = truth
    pd.DataFrame(dict(id=list('abcd'), mask=['']*4)).to_csv(tmp_path/'cols.csv', index=False)
    r = run_score(tmp_path, tmp_path/'cols.csv', truth_csv)
    assert r.returncode != 0 and "cols.csv: missing column(s) ['rle_mask']" in r.stderr
    write_csv(tmp_path/'dup.csv', list('abcda'), [*t, t[0]])
    r = run_score(tmp_path, tmp_path/'dup.csv', truth_csv)
    assert r.returncode != 0 and 'dup.csv: 1 duplicate id(s), e.g. a' in r.stderr
    r = run_score(tmp_path, tmp_path/'nope.csv', truth_csv)
    assert r.returncode != 0 and 'nope.csv: no such file' in r.stderr


def test_extra_ids_ignored(tmp_path, truth):
    t, truth_csv = truth
    junk = np.ones((TILE, TILE), bool)
    pred = write_csv(tmp_path/'pred.csv', ['x', 'd', 'c', 'b', 'a', 'y'], [junk, *t[::-1], junk])
    r = run_score(tmp_path, pred, truth_csv)
    assert r.returncode == 0, r.stderr
    assert score_of(r.stdout) == 1.0
    assert 'scored 4 of 6 predictions; 2 ids have no truth row and were ignored' in r.stdout


def test_help(tmp_path):
    r = run_score(tmp_path, '--help')
    assert r.returncode == 0
    for word in ['pred', 'truth', '--by_class', 'competition score', 'IoU']: assert word in r.stdout


def assert_error(r, *words):
    "A non-zero exit with one `salt_score: error:` line on stderr that holds `words`, and no traceback."
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and 'Traceback' not in r.stderr, r.stderr
    assert len(lines) == 1 and lines[0].startswith('salt_score: error: '), r.stderr
    for w in words: assert w in lines[0], r.stderr


def test_extra_rows_are_decoded(tmp_path, truth):
    t, truth_csv = truth
    pred = write_csv(tmp_path/'pred.csv', [*'abcd', 'x'], [*t, '5 x'])   # 'x' has no truth row, but its RLE is garbage
    assert_error(run_score(tmp_path, pred, truth_csv), 'pred.csv: id x: malformed RLE')
    truth2 = write_csv(tmp_path/'truth2.csv', list('ab'), [t[0], '99999999999999999999999 5'])
    assert_error(run_score(tmp_path, truth_csv, truth2), 'truth2.csv: id b: malformed RLE: number too large')


def test_unusable_files(tmp_path, truth):
    t, truth_csv = truth
    (tmp_path/'head.csv').write_text('id,rle_mask\n'); (tmp_path/'zero.csv').write_text(''); (tmp_path/'dir.csv').mkdir()
    assert_error(run_score(tmp_path, truth_csv, tmp_path/'head.csv'), 'head.csv: header only')
    assert_error(run_score(tmp_path, tmp_path/'zero.csv', truth_csv), 'zero.csv: empty file')
    assert_error(run_score(tmp_path, truth_csv, tmp_path/'zero.csv'), 'zero.csv: empty file')
    assert_error(run_score(tmp_path, tmp_path/'dir.csv', truth_csv), 'dir.csv: is a folder')
    assert_error(run_score(tmp_path, truth_csv, tmp_path/'dir.csv'), 'dir.csv: is a folder')
    bad = write_csv(tmp_path/'bad.csv', ['a'], ['1 x'])   # a missing TRUTH is reported before PRED is decoded
    assert_error(run_score(tmp_path, bad, tmp_path/'nope.csv'), 'nope.csv: no such file')

"Tests of the error-analysis report (`salt_nb.analysis.make_report`), the EDA figures and the demo's files and command."
import json
from pathlib import Path
import numpy as np, pandas as pd, pytest
from salt_nb.data import TILE, TileSet, SaltData, load_tgs
from salt_nb.metrics import precision_iou, competition_metric
from salt_nb.postprocess import apply_postprocess
from salt_nb.analysis import make_report, simulate_probs, error_table, load_oof
from salt_nb.eda import eda_figures
from conftest import run_cli


def _tiles(n=30, seed=0) -> TileSet:
    "Tiles with rectangles of salt on two thirds of them, one blank tile and one vertical mask."
    rng = np.random.default_rng(seed)
    ms = np.zeros((n, TILE, TILE), bool)
    for i in range(n // 3, n): ms[i, rng.integers(0, 60):, :rng.integers(25, TILE)] = True
    ms[-1] = False; ms[-1, :, :40] = True
    ims = rng.integers(0, 255, (n, TILE, TILE)).astype(np.uint8); ims[0] = 0
    return TileSet([f'id{i:03d}' for i in range(n)], ims, ms, rng.uniform(50, 950, n))


def _run(tmp_path, tiles, threshold=.5, min_area=0, folds=True):
    probs, kinds = simulate_probs(tiles.masks, seed=3, fp_empty=.5, fn_salt=.2, low_iou=.1, boundary=.3)
    run = tmp_path/'run'; run.mkdir()
    arrs = dict(ids=tiles.ids, probs=probs)
    if folds: arrs['folds'] = np.arange(len(tiles)) % 3
    np.savez(run/'oof.npz', **arrs)
    (run/'postprocess.json').write_text(json.dumps(dict(threshold=threshold, min_area=min_area, cls_threshold=None, score_oof=None)))
    return run, probs, kinds


def test_report_files_and_score(tmp_path):
    ts = _tiles()
    run, probs, kinds = _run(tmp_path, ts, threshold=.5, min_area=20)
    # the report sees the tiles in another order than the OOF file: ids must be matched, not positions
    data = SaltData(ts[::-1], ts[:0])
    rep = make_report(run, data)
    assert rep == run/'report'/'report.md'
    names = {p.name for p in rep.parent.iterdir()}
    assert {'report.md', 'report.html', 'error_table.csv', 'summary.json', 'breakdown.png', 'curves.png'} <= names
    assert any(n.startswith('worst_') for n in names)
    expected = competition_metric(apply_postprocess(probs, dict(threshold=.5, min_area=20)), ts.masks)
    summary = json.loads((rep.parent/'summary.json').read_text())
    assert summary['score'] == pytest.approx(expected)
    assert summary['images'] == len(ts)
    tab = pd.read_csv(rep.parent/'error_table.csv', keep_default_na=False)
    assert list(tab.id) == list(ts.ids)
    assert set(tab.error) <= {'ok', 'boundary', 'low_iou', 'fn_salt', 'fp_empty'}
    text = rep.read_text()
    assert '## By error type' in text and '## By fold' in text and f"{expected:.4f}" in text


def test_error_table_matches_metrics():
    ts = _tiles(45, seed=1)
    probs, kinds = simulate_probs(ts.masks, seed=0, fp_empty=.6, fn_salt=.3)
    t = error_table(ts.ids, probs, ts.masks, ts.images, ts.depths, threshold=.5)
    np.testing.assert_array_equal(t.score.to_numpy(), precision_iou(probs > .5, ts.masks))
    for k in ('ok', 'fp_empty', 'fn_salt'): assert set(t.error[kinds == k]) == {k}
    assert t.blank.tolist()[0] and not t.blank.tolist()[1]
    assert t.vertical.tolist()[-1]


def test_report_output_dir_and_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv('SALT_NB_CACHE', str(tmp_path/'cache'))  # load_tgs caches here, not in the home folder
    synth = pytest.importorskip('salt_nb.synth')
    folder = synth.make_synthetic(tmp_path/'syn', n_sections=1, section_tiles=(4, 3), progress=False)
    data = load_tgs(folder, progress=False, cache=False)
    run, _, _ = _run(tmp_path, data.train, folds=False)
    out = tmp_path/'elsewhere'
    rep = make_report(run, folder, out_dir=out)  # data given as a folder
    assert rep == out/'report.md' and (out/'breakdown.png').exists()
    assert '## By fold' not in rep.read_text()


def test_report_errors(tmp_path):
    ts = _tiles()
    with pytest.raises(FileNotFoundError, match='oof.npz'): make_report(tmp_path, SaltData(ts, ts[:0]))
    run, _, _ = _run(tmp_path, ts)
    with pytest.raises(ValueError, match='not among the labeled tiles'): make_report(run, SaltData(ts[:5], ts[:0]))
    np.savez(run/'oof.npz', ids=ts.ids, probs=np.zeros((3, TILE, TILE), np.float16))
    with pytest.raises(ValueError, match='probs has shape'): load_oof(run)


def test_eda_figures(tmp_path):
    ts = _tiles()
    paths = eda_figures(SaltData(ts, ts[:4]), tmp_path/'eda')
    assert len(paths) == 5 and all(p.exists() and p.stat().st_size > 1000 for p in paths)


def _half_way_savefig(self, fname, *args, **kwargs):
    "A `Figure.savefig` stopped half-way: some PNG bytes reach its target, then an error."
    part = b'\x89PNG\r\n\x1a\n half'
    if hasattr(fname, 'write'): fname.write(part)
    else: open(fname, 'wb').write(part)
    raise RuntimeError('stopped half-way')


def test_report_interrupted_keeps_old_files(tmp_path, monkeypatch):
    "A report stopped while saving its first figure leaves the previous figures and pages byte-identical."
    import matplotlib.figure
    run, _, _ = _run(tmp_path, _tiles())
    rep = make_report(run, SaltData(_tiles(), _tiles()[:0]))
    before = {p.name: p.read_bytes() for p in rep.parent.iterdir()}
    monkeypatch.setattr(matplotlib.figure.Figure, 'savefig', _half_way_savefig)
    with pytest.raises(RuntimeError, match='half-way'): make_report(run, SaltData(_tiles(), _tiles()[:0]))
    assert {p.name: p.read_bytes() for p in rep.parent.iterdir()} == before   # the error table: same bytes again


def test_report_every_file_through_atomic_write(tmp_path, monkeypatch):
    import salt_nb.analysis as analysis, salt_nb.eda as eda
    from salt_nb.files import atomic_write
    seen = []
    rec = lambda path, write: seen.append(Path(path)) or atomic_write(path, write)
    for m in (analysis, eda): monkeypatch.setattr(m, 'atomic_write', rec)
    run, _, _ = _run(tmp_path, _tiles())
    rep = make_report(run, SaltData(_tiles(), _tiles()[:0]))
    assert set(rep.parent.iterdir()) == set(seen) and len(seen) >= 6


def test_eda_figures_interrupted_keeps_old_png(tmp_path, monkeypatch):
    import matplotlib.figure
    ts = _tiles()
    paths = eda_figures(SaltData(ts, ts[:4]), tmp_path/'eda')
    before = {p.name: p.read_bytes() for p in paths}
    monkeypatch.setattr(matplotlib.figure.Figure, 'savefig', _half_way_savefig)
    with pytest.raises(RuntimeError, match='half-way'): eda_figures(SaltData(ts, ts[:4]), tmp_path/'eda')
    assert {p.name: p.read_bytes() for p in (tmp_path/'eda').iterdir()} == before


def test_demo_every_file_through_atomic_write(tmp_path, monkeypatch):
    "The demo's own files (EDA figures, submissions, summary.json) all go through `atomic_write`; training is faked."
    import salt_nb.demo as demo, salt_nb.eda as eda, salt_nb.inference as inference
    from salt_nb.files import atomic_write
    from salt_nb.synth import make_synthetic
    monkeypatch.setenv('SALT_NB_CACHE', str(tmp_path/'cache'))
    syn = make_synthetic(tmp_path/'syn', n_sections=1, section_tiles=(4, 3), progress=False)
    seen = []
    rec = lambda path, write: seen.append(Path(path)) or atomic_write(path, write)
    for m in (demo, eda, inference): monkeypatch.setattr(m, 'atomic_write', rec)
    m = dict(model='tiny', epochs=1, seconds=1.0, oof=dict(score_tuned=.5, n=3, postprocess={}))
    monkeypatch.setattr(demo, 'train_run', lambda *a, **k: m)
    def predict(models, path, sub, probs=None, progress=False):
        d = load_tgs(path, progress=False)
        return demo.write_submission(d.test.ids, demo.baseline_masks(d.test.images), sub, sample_ids=d.sample_ids)
    monkeypatch.setattr(demo, 'predict_submission', predict)
    monkeypatch.setattr(demo, 'make_report', lambda run, data, out_dir: rec(out_dir/'report.md', lambda f: f.write(b'# r')))
    s = demo.run_demo(syn, tmp_path/'run', minutes=1, progress=False)
    files = {p for p in (tmp_path/'run').rglob('*') if p.is_file()}
    assert files == set(seen) and tmp_path/'run'/'summary.json' in files and len(files) >= 9
    assert s['submission']['test_score'] == s['baseline']['test_score']


@pytest.mark.parametrize('args, msg', [(['--minutes', 'abc'], "argument --minutes: invalid float value: 'abc'"),
                                       (['--minutes', '-1'], '--minutes -1.0: must be a number > 0'),
                                       (['--synth_dir', '{tmp}/f.txt'], '--synth_dir {tmp}/f.txt: is a file; give a folder'),
                                       (['--data', '{tmp}/nowhere'], 'data folder {tmp}/nowhere does not exist')])
def test_demo_cli_bad_input(tmp_path, args, msg):
    "Bad options and paths stop `salt_demo` at once with one line naming the flag, and nothing is written."
    (tmp_path/'f.txt').write_text('x')
    args = [a.format(tmp=tmp_path) for a in args]
    defaults = ['--out', tmp_path/'run', '--synth_dir', tmp_path/'syn']
    r = run_cli('salt_demo', tmp_path, *defaults, *args, timeout=120)
    assert r.returncode != 0 and 'Traceback' not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f'salt_demo: error: {msg.format(tmp=tmp_path)}'), r.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith('_script.py')) == ['f.txt']

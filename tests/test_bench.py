"The benchmark scripts bench/time_to_score.py and bench/reference_unet.py end to end on a tiny synthetic folder, as subprocesses."
import json, os, re, subprocess, sys
import numpy as np, pytest, yaml

from conftest import REPO, cli_env, tiny_synth


@pytest.fixture(scope='module')
def data(tmp_path_factory): return tiny_synth(tmp_path_factory, (6, 4))   # 24 labeled tiles


def tts(tmp_path, *args, **config):
    "bench/time_to_score.py with a tiny one-epoch config (`config`: keys changed)."
    cfg = tmp_path/'tiny.yaml'
    cfg.write_text(yaml.safe_dump({**dict(name='pytest', model='tiny', geometry='resize64', bs=4, lr=0.003,
                                          schedule='one_cycle', epochs=1), **config}))
    return subprocess.run([sys.executable, str(REPO/'bench'/'time_to_score.py'), '--config', cfg, *map(str, args)],
                          capture_output=True, text=True, timeout=300,
                          env=cli_env(SALT_NB_CACHE=tmp_path/'cache', OMP_WAIT_POLICY=os.environ.get('OMP_WAIT_POLICY', 'PASSIVE')))


def test_time_to_score_learning_curve(tmp_path, data):
    full = tts(tmp_path, '--data', data, '--epochs', 1, '--out', tmp_path/'all')
    assert full.returncode == 0, full.stdout[-2000:] + full.stderr[-2000:]
    part = tts(tmp_path, '--data', data, '--epochs', 1, '--out', tmp_path/'part', '--drop-folds', 1)
    assert part.returncode == 0, part.stdout[-2000:] + part.stderr[-2000:]
    assert 'folds [1] left out' in part.stdout and 'final model' in part.stdout
    a, b = (json.loads((tmp_path/d/'time_to_score.json').read_text()) for d in ('all', 'part'))
    assert b['drop_folds'] == [1] and a['drop_folds'] == []
    assert b['n_valid'] == a['n_valid'] and 0 < b['n_train'] < a['n_train']   # same held-out tiles, fewer to train on
    assert 0 <= b['final']['score_tuned'] <= 1 and 0 <= b['final']['score_cv_tuned'] <= 1
    assert 'cross-validated tuned' in part.stdout
    seed = tts(tmp_path, '--data', data, '--epochs', 1, '--out', tmp_path/'seed', '--set', 'seed=7')
    assert seed.returncode == 0, seed.stdout[-2000:] + seed.stderr[-2000:]
    c = json.loads((tmp_path/'seed'/'time_to_score.json').read_text())
    ids = lambda d: np.load(tmp_path/d/'oof.npz')['ids'].tolist()
    assert (c['config']['seed'], a['config']['seed']) == (7, 42) and ids('seed') == ids('all')   # another seed, same split


def test_time_to_score_ema(tmp_path, data):
    r = tts(tmp_path, '--data', data, '--epochs', 2, '--out', tmp_path/'ema', '--ema', '0.9,0.99')
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads((tmp_path/'ema'/'time_to_score.json').read_text())['ema']
    assert res['start'] == 0 and sorted(res['scores']) == ['0.9', '0.99']          # one_cycle: averaged from the start
    for s in res['scores'].values(): assert all(0 <= s[k] <= 1 for k in ('score_t05', 'score_tuned', 'score_cv_tuned'))
    assert (tmp_path/'ema'/'checkpoints'/'fold0_ema0.99.pth').exists() and 'decay 0.99 (from epoch 0' in r.stdout
    bad = tts(tmp_path, '--data', data, '--epochs', 2, '--out', tmp_path/'x', '--ema', '1.5')
    assert bad.returncode != 0 and 'must be in (0, 1)' in bad.stderr
    late = tts(tmp_path, '--data', data, '--epochs', 2, '--out', tmp_path/'x', '--ema', '0.9', '--ema-start', 2)
    assert late.returncode != 0 and 'must be an epoch of the run (0 to 1)' in late.stderr


@pytest.mark.parametrize('bad', ['0', 'one'])
def test_time_to_score_bad_drop(tmp_path, data, bad):
    r = tts(tmp_path, '--data', data, '--epochs', 1, '--out', tmp_path/'x', '--drop-folds', bad)
    assert r.returncode != 0 and f"folds 1-4, got '{bad}'" in r.stderr


def test_reference_unet(tmp_path, data):
    "The plain-PyTorch reference of the training issue (bench/reference_unet.py) trains and scores fold 0."
    run = lambda *a: subprocess.run([sys.executable, str(REPO/'bench'/'reference_unet.py'), '--data', data, *map(str, a)],
                                    capture_output=True, text=True, timeout=300, env=cli_env(SALT_NB_CACHE=tmp_path/'cache'))
    r = run('--epochs', 2, '--bs', 4, '--precision', 'fp32', '--out', tmp_path/'ref')
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads((tmp_path/'ref'/'result.json').read_text())
    assert res['bf16'] is False and 'float32' in r.stdout          # as asked, whatever the CPU
    assert res['epochs'] == 2 and res['n_train'] + res['n_valid'] == 24 and res['n_valid'] > 0
    assert [c['epoch'] for c in res['curve']] == [1, 2] and all(0 <= c['score_tuned'] <= 1 for c in res['curve'])
    bad = run('--epochs', 1, '--bs', 64, '--out', tmp_path/'bad')
    assert bad.returncode != 0 and 'make no batch of 64' in bad.stderr


def test_oof_mosaic_neighbours(tmp_path, data):
    "bench/oof_mosaic_neighbours.py reads a run's oof.npz and measures its neighbour-edge rule."
    r = tts(tmp_path, '--data', data, '--epochs', 1, '--out', tmp_path/'run')
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    m = subprocess.run([sys.executable, str(REPO/'bench'/'oof_mosaic_neighbours.py'), str(tmp_path/'run'), '--data', str(data)],
                       capture_output=True, text=True, timeout=300, env=cli_env(SALT_NB_CACHE=tmp_path/'cache'))
    assert m.returncode == 0, m.stdout[-2000:] + m.stderr[-2000:]
    assert 'lost_with_neighbour' in m.stdout and 'salt under 10%, on the border' in m.stdout
    assert 'validation tiles' in m.stdout and ('threshold 0.25' in m.stdout or 'nothing to measure' in m.stdout)


def test_oof_variants(tmp_path, data):
    "bench/oof_variants.py scores a run's mask clean-ups and, for a pad geometry, its held-out tiles at 9 pad offsets."
    r = tts(tmp_path, '--data', data, '--epochs', 1, '--out', tmp_path/'run', geometry='pad112')
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    run = lambda *a: subprocess.run([sys.executable, str(REPO/'bench'/'oof_variants.py'), *map(str, a), '--data', str(data)],
                                    capture_output=True, text=True, timeout=300, env=cli_env(SALT_NB_CACHE=tmp_path/'cache'))
    v = run(tmp_path/'run', '--offsets')
    assert v.returncode == 0, v.stdout[-2000:] + v.stderr[-2000:]
    for k in ('as submitted', 'holes filled', 'largest component', 'under 50 px dropped', 'offset (0, 0): alone', 'all 9 averaged'):
        assert k in v.stdout, k
    assert sum(l.startswith('  offset (') for l in v.stdout.splitlines()) == 8
    assert float(re.search(r'saved OOF within ([0-9.e+-]+)', v.stdout).group(1)) < 0.01   # the default offset is the run's own
    r = tts(tmp_path, '--data', data, '--epochs', 1, '--out', tmp_path/'resized')
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    bad = run(tmp_path/'resized', '--offsets')
    assert bad.returncode != 0 and "needs a 'pad' geometry, not 'resize64'" in bad.stderr


def test_device_call(tmp_path, data):
    "bench/pack_device_data.py packs a folder with a few test tiles; bench/device_call.sh trains and predicts from it."
    env = cli_env(SALT_NB_CACHE=tmp_path/'cache', OMP_WAIT_POLICY='PASSIVE', PYTHON=sys.executable,
                  OUT=tmp_path/'out', RUN=tmp_path/'run')
    pk = subprocess.run([sys.executable, str(REPO/'bench'/'pack_device_data.py'), str(tmp_path/'d.npz'), '--data', data, '--test', '5'],
                        capture_output=True, text=True, timeout=300, env=env)
    assert pk.returncode == 0 and '24 labeled tiles and 5 of' in pk.stdout, pk.stdout + pk.stderr[-2000:]
    cfg = tmp_path/'tiny.yaml'
    cfg.write_text(yaml.safe_dump(dict(name='pytest', model='tiny', geometry='resize64', bs=4, schedule='one_cycle', epochs=2, folds=[0])))
    r = subprocess.run(['bash', str(REPO/'bench'/'device_call.sh'), '0.3', str(cfg), str(tmp_path/'d.npz')], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = tmp_path/'out'
    for f in ('metrics.json', 'postprocess.json', 'oof.npz', 'submission.csv', 'test_probs.npz', 'call.log', 'epochs.csv'):
        assert (out/f).exists(), f
    back = [f for f in out.rglob('*') if f.is_file()]      # what the device tool returns: 8 files, plain names
    assert len(back) <= 8 and all(re.fullmatch(r'[A-Za-z0-9._-]+', f.name) for f in back), back
    assert 'train_loss' in (out/'epochs.csv').read_text().splitlines()[0]
    log = (out/'call.log').read_text()                      # salt_train's and salt_predict's output, in order
    assert log.index('budget 0.3 min') < log.index('submission.csv: 5 tiles')
    sub = np.loadtxt(out/'submission.csv', dtype=str, delimiter=',', skiprows=1, usecols=0)
    with np.load(tmp_path/'d.npz') as z: test_ids = z['test_ids']
    assert sorted(sub) == sorted(test_ids) and len(test_ids) == 5
    with np.load(out/'test_probs.npz') as z: assert z['probs'].dtype == np.uint8 and len(z['ids']) == 5
    assert 'device_call: train' in r.stdout and 0 <= json.loads((out/'metrics.json').read_text())['oof']['score_cv_tuned'] <= 1
    bad = subprocess.run(['bash', str(REPO/'bench'/'device_call.sh'), '1', str(cfg), str(tmp_path/'missing.npz')], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, env=env)
    assert bad.returncode == 2 and 'no data file' in bad.stderr


def test_step_phases(tmp_path, data):
    "bench/step_phases.py times the phases of training steps of two configs in turn, overrides applied; bad specs fail clearly."
    run = lambda *a: subprocess.run([sys.executable, str(REPO/'bench'/'step_phases.py'), '--data', data, *map(str, a)],
                                    capture_output=True, text=True, timeout=300, env=cli_env(SALT_NB_CACHE=tmp_path/'cache'))
    r = run('demo', 'demo:bs=4,channels_last=off', '--steps', 5, '--reps', 2)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    rows = [l.split('|')[1:-1] for l in r.stdout.splitlines() if l.startswith('| demo')]
    assert [(c.strip(), k.strip()) for c, k, *_ in rows] == [('demo', '1'), ('demo:bs=4,channels_last=off', '1'),
                                                             ('demo', '2'), ('demo:bs=4,channels_last=off', '2')]
    for row in rows:
        data_ms, fwd, loss, bwd, step, total, rate = map(float, row[2:])
        assert min(fwd, loss, bwd, step) > 0 and data_ms + fwd + loss + bwd + step <= total * 1.5 and rate > 0
    bad = run('demo:bss=4')
    assert bad.returncode != 0 and "unknown config key 'bss'" in bad.stderr
    kw = run('demo:bs=4,model_kwargs={scse: false, n_dilated: 0}', '--steps', 4, '--reps', 1)   # a mapping's commas
    assert kw.returncode == 0 and '| demo:bs=4,model_kwargs={scse: false, n_dilated: 0} | 1 |' in kw.stdout, kw.stderr[-2000:]


def _perfect_probs(data):
    "The labeled tiles of `data`, their masks, the indices of the salt tiles, and probabilities that get every pixel right."
    from salt_nb.data import load_tgs
    train = load_tgs(data, progress=False, cache=False).train
    m = train.masks.astype(bool)
    salt = np.flatnonzero(m.any((1, 2)))
    assert len(salt) >= 2, 'the tiny synthetic data needs salt tiles'
    return train, m, salt, np.where(m, .9, .1).astype(np.float32)


def test_tuning_margin(tmp_path, data):
    "bench/tuning_margin.py on a made-up run: perfect masks but for one salt tile at probability 0.45."
    train, m, salt, probs = _perfect_probs(data)
    probs[salt[0]][m[salt[0]]] = .45                  # found only under a threshold of 0.45
    (tmp_path/'run').mkdir()
    np.savez(tmp_path/'run'/'oof.npz', ids=train.ids, probs=probs)
    r = subprocess.run([sys.executable, str(REPO/'bench'/'tuning_margin.py'), str(tmp_path/'run'), '--data', str(data), '--repeats', '2'],
                       capture_output=True, text=True, timeout=300, env=cli_env(SALT_NB_CACHE=tmp_path/'cache'))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    n = len(m)
    assert f"({n} tiles): default {1 - 1 / n:.4f}" in r.stdout, r.stdout    # one salt tile missed at 0.5
    assert 'picked on all tiles (0.44, 0, None) with' in r.stdout           # 1/n is far above 0.12/sqrt(n): tuned
    assert 'mean over 1 run(s)' in r.stdout
    bad = subprocess.run([sys.executable, str(REPO/'bench'/'tuning_margin.py'), str(tmp_path/'nowhere'), '--data', str(data)],
                         capture_output=True, text=True, timeout=300, env=cli_env(SALT_NB_CACHE=tmp_path/'cache'))
    assert bad.returncode != 0 and 'missing out-of-fold predictions' in bad.stderr and 'Traceback' not in bad.stderr


@pytest.fixture
def pool_folds(tmp_path, monkeypatch, capsys):
    "Run bench/pool_folds.py's `main` in this process (a subprocess spends 13 s importing): returncode, stdout, stderr."
    import importlib.util, types
    spec = importlib.util.spec_from_file_location('pool_folds', REPO/'bench'/'pool_folds.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    monkeypatch.setenv('SALT_NB_CACHE', str(tmp_path/'cache'))
    def run(*args):
        monkeypatch.setattr(sys, 'argv', ['pool_folds.py', *map(str, args)])
        try: mod.main(); code = 0
        except SystemExit as e: code = e.code                  # errors leave as SystemExit('pool_folds: ...')
        out = capsys.readouterr()
        return types.SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err + (code if isinstance(code, str) else ''))
    return run


def test_pool_folds(tmp_path, data, pool_folds):
    "bench/pool_folds.py on two made-up runs holding out the two halves of the labeled tiles; overlapping runs refused."
    train, m, salt, probs = _perfect_probs(data)
    probs[salt[0]] = .2                                 # one salt tile called empty: it scores 0
    half = np.arange(len(m)) < len(m) // 2
    for name, keep, fold in (('a', half, 0), ('b', ~half, 1), ('ab', np.ones_like(half), 0)):
        (tmp_path/name).mkdir()
        np.savez(tmp_path/name/'oof.npz', ids=train.ids[keep], probs=probs[keep], folds=np.full(keep.sum(), fold))
    (tmp_path/'a'/'metrics.json').write_text(json.dumps(dict(epochs=7, seconds=90)))
    pool = lambda *runs: pool_folds(*runs, '--data', data)
    r = pool(tmp_path/'a', tmp_path/'b')
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    n = len(m)
    assert f"pooled over {n} tiles (100% of the {n} labeled): t=0.5 {1 - 1 / n:.4f}" in r.stdout, r.stdout
    assert f"| {tmp_path/'a'} | 0 | {half.sum()} | 7 | 1.5 |" in r.stdout, r.stdout
    bad = pool(tmp_path/'a', tmp_path/'ab')
    assert bad.returncode != 0 and 'is held out by both' in bad.stderr and 'Traceback' not in bad.stderr


def test_pool_folds_mosaics(tmp_path, data, pool_folds):
    "pool_folds.py --mosaics: a held-out tile called empty, below a training tile with the same vertical mask, gets it back."
    import pandas as pd
    from salt_nb.data import load_tgs, save_packed
    d = load_tgs(data, progress=False, cache=False)
    half = np.arange(len(d.train)) < len(d.train) // 2           # run 'a' holds out the first half
    t, s = 0, len(d.train) - 1                                   # held-out target, training source above it
    d.train.masks[[s, t]] = False; d.train.masks[[s, t], :, :40] = True    # the same salt wall in both
    packed = save_packed(d, tmp_path/'walls.npz')
    probs = np.where(d.train.masks, .9, .1).astype(np.float32); probs[t] = .2    # the target is called empty
    (tmp_path/'a').mkdir()
    np.savez(tmp_path/'a'/'oof.npz', ids=d.train.ids[half], probs=probs[half], folds=np.zeros(half.sum(), int))
    pd.DataFrame(dict(id=d.train.ids[[s, t]], mosaic_id=0, x=0, y=[0, 1])).to_csv(tmp_path/'m.csv', index=False)
    r = pool_folds(tmp_path/'a', '--data', packed, '--mosaics', tmp_path/'m.csv')
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    n = int(half.sum())
    assert f"1 held-out tile(s) changed, own post-processing {1 - 1 / n:.4f} -> 1.0000" in r.stdout, r.stdout
    assert f"(2 tiles placed): 1.0000 (gain {1 / n:+.4f}," in r.stdout, r.stdout
    bad = pool_folds(tmp_path/'a', '--data', packed, '--mosaics', tmp_path/'nowhere.csv')
    assert bad.returncode != 0 and 'missing mosaics file' in bad.stderr and 'Traceback' not in bad.stderr

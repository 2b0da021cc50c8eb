"bench/fault_injection.py: its pure helpers on made-up output lines and folders; the whole benchmark with small counts (slow)."
import importlib.util, json, os, random, subprocess, sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import REPO, cli_env

spec = importlib.util.spec_from_file_location('fault_injection', REPO/'bench'/'fault_injection.py')
fi = importlib.util.module_from_spec(spec); spec.loader.exec_module(fi)

RUN = [
    "config demo (tiny, resize64): the default on cpu",
    "fold 0 epoch 1/3 train_loss 1.40 valid_loss 1.39 salt 0.02 iou 0.25 5s",
    "[faults] write /r/checkpoints/fold0_best.pth",
    "[faults] wrote /r/checkpoints/fold0_best.pth",
    "fold 0 epoch 2/3 train_loss 1.30 valid_loss 1.29 salt 0.10 iou 0.35 5s",
    "fold 0 epoch 3/3 train_loss 1.20 valid_loss 1.19 salt 0.20 iou 0.45 5s",
    "[faults] write /r/checkpoints/fold0_state.pth",
    "[faults] wrote /r/checkpoints/fold0_state.pth",
    "fold 0: score 0.3103 (threshold 0.5, flip TTA) on 29 tiles, 3 epochs, 0.3 min",
    "[faults] write /r/oof.npz",
    "[faults] wrote /r/oof.npz",
    "post-processing tuned on 29 OOF tiles: threshold 0.58, min_area 10 -> 0.52",
]


def test_classify_phase():
    phases = [fi.classify_phase(RUN[:n]) for n in range(len(RUN) + 1)]
    assert phases == ['epoch', 'epoch', 'epoch', 'checkpoint', 'epoch', 'epoch', 'oof', 'checkpoint', 'oof',
                      'tuning', 'checkpoint', 'tuning', 'exit']
    assert fi.open_write(RUN[:3]) == '/r/checkpoints/fold0_best.pth' and fi.open_write(RUN[:4]) is None
    assert fi.classify_phase(["fold 0: already trained (resume), skipped"]) == 'tuning'   # a resumed run that skips training
    assert fi.classify_phase(["epoch 1/1 train_loss 1.0 2s"]) == 'oof'                      # a line without the fold prefix


def test_epochs_saved():
    assert fi.epoch_numbers(RUN) == [1, 2, 3] and fi.saved_epoch(RUN) == 3 and fi.saved_epoch(RUN[:6]) == 0
    assert fi.saved_epoch(RUN[:7]) == 0                       # the state write of epoch 3 has begun, not ended


def test_timeline():
    lines = [(10. + i, l) for i, l in enumerate(RUN)] + [(30., "[faults] wrote /r/metrics.json")]
    tl = fi.timeline(lines[:11] + [(20.5, "[faults] wrote /r/metrics.json"), (21.5, "[faults] write /r/postprocess.json"),
                                   (22., RUN[-1])])
    assert (tl['n_epochs'], tl['epochs'], tl['fold'], tl['tuned']) == (3, [11., 14., 15.], 18., 22.)
    assert (tl['epoch_s'], tl['tune_start'], tl['tune_end'], tl['oof_start']) == (2., 20.5, 21.5, 17.)
    with pytest.raises(ValueError, match='no fold, tuned'): fi.timeline(lines[:3])
    assert fi.phase_durations(lines[:11] + [(20.5, "[faults] wrote /r/metrics.json"), (21.25, "[faults] write /r/postprocess.json")]) \
        == dict(oof=1., tuning=0.75)
    resumed = [(1., "fold 0 epoch 3/3 x"), (1.5, "[faults] wrote /r/checkpoints/fold0_state.pth"), (1.75, RUN[8])]
    assert fi.phase_durations(resumed) == dict(oof=0.25) and fi.phase_durations(resumed[:2]) == {}


def test_triggers():
    import re
    proc = type('P', (), {})(); proc.lines = [(float(i), l) for i, l in enumerate(RUN)]
    trig = fi.line_after_line(proc, re.compile('epoch 3/3'), re.compile(r'wrote .*_state\.pth$'), 0.25)
    assert trig() == 7.25
    assert fi.line_after_line(proc, re.compile('epoch 3/3'), re.compile('never'), 1)() is None
    assert fi.nth_line_after(proc, re.compile(r'^\[faults\] write '), 2, 0.5)() == 6.5
    assert fi.nth_line_after(proc, re.compile(r'^\[faults\] write '), 4, 0.5)() is None


def test_file_sets(tmp_path):
    for rel in ('config.yaml', 'checkpoints/fold0_best.pth', 'checkpoints/.fold0_state.pth.tmp123-456', 'logs/fold0.csv'):
        (tmp_path/rel).parent.mkdir(parents=True, exist_ok=True); (tmp_path/rel).write_text('x')
    got = fi.file_set(tmp_path)
    ref = {'config.yaml', 'checkpoints/fold0_best.pth', 'logs/fold0.csv', 'metrics.json'}
    assert fi.compare_file_sets(ref, got) == dict(missing=['metrics.json'], extra=['checkpoints/.fold0_state.pth.tmp123-456'],
                                                  temp=['checkpoints/.fold0_state.pth.tmp123-456'])
    assert fi.compare_file_sets(ref, ref) == dict(missing=[], extra=[], temp=[])
    assert [fi.is_temp(n) for n in ('.sub.csv.tmp99-1', 'a.tmp', 'a~', 'oof.npz', 'metrics.json')] == [True] * 3 + [False] * 2


def test_unreadable(tmp_path):
    import numpy as np, torch
    (tmp_path/'a.json').write_text('{"oof": {"score_tuned": 0.5}}'); (tmp_path/'b.json').write_text('{"oof": ')
    np.savez(tmp_path/'c.npz', x=np.arange(3)); (tmp_path/'d.npz').write_bytes((tmp_path/'c.npz').read_bytes()[:40])
    torch.save({'w': torch.ones(2)}, tmp_path/'e.pth'); (tmp_path/'f.pth').write_bytes((tmp_path/'e.pth').read_bytes()[:50])
    (tmp_path/'g.csv').write_text('a,b\n1,2\n'); (tmp_path/'h.csv').write_text('a,b\n1,2\n3')
    assert [f for f, _ in fi.unreadable(tmp_path)] == ['b.json', 'd.npz', 'f.pth', 'h.csv']
    assert fi.oof_score(tmp_path.parent) is None and fi.oof_score(tmp_path) is None   # no metrics.json
    (tmp_path/'metrics.json').write_text('{"oof": {"score_tuned": 0.5}}'); assert fi.oof_score(tmp_path) == 0.5


def test_output_state():
    old, new = b'id,rle_mask\na,1 2\n', b'id,rle_mask\na,\n'
    assert [fi.output_state(d, old, new) for d in (None, old, new, new[:7], b'')] == ['missing', 'old', 'new', 'broken', 'broken']
    assert fi.output_state(b'id,rle_mask\na,3 4\n', old, new, b'id,rle_mask\n', 2) == 'new'   # complete, other bytes
    assert fi.output_state(b'id,rle_mask\na,3', old, new, b'id,rle_mask\n', 2) == 'broken'


def test_pick_target_and_summary():
    rng = random.Random(0)
    picks = Counter(fi.pick_target(Counter(epoch=3, checkpoint=3, oof=1, tuning=3), rng) for _ in range(200))
    assert set(picks) == {'oof', 'random'} and picks['oof'] > picks['random']
    kill = lambda phase, ok, **kw: dict(phase=phase, survived=ok, file=None, **kw)
    report = dict(train=dict(kills=[kill('epoch', True), kill('checkpoint', False, cause='extra [.oof.npz.tmp-vm-1-2]'), kill('exit', True)],
                             runs=[dict(ok=False, kills=2, problems=['x']), dict(ok=True, kills=1, problems=[])]),
                  predict=dict(kills=[dict(state='old', mid_write=True, temp=['.s.tmp1'], temp_after_rerun=[], survived=True)]))
    rows = fi.summary_rows(report)
    assert rows[0][:3] == ('salt_train: epoch', 1, 1) and rows[1][:3] == ('salt_train: checkpoint', 1, 0)
    assert ('salt_train: exit', 1, 1) == rows[4][:3] and rows[5][:3] == ('salt_train: all', 3, 2)
    assert rows[6][:3] == ('salt_predict', 1, 1) and '1 left temp files, 0 still there' in rows[6][3]
    assert fi.failure_lines(report) == ['FAILED x1: salt_train, kill in checkpoint: extra [.oof.npz.tmp-<host>-<pid>-<thread>]']
    assert fi.format_table(rows).splitlines()[0].split() == ['what', 'kills', 'survived', 'notes']


def test_blame():
    kills = [dict(pid=11), dict(pid=12), dict(pid=13)]
    tmp = 'checkpoints/.fold0_best.pth.tmp-vm-12-999'
    fi.blame(kills, dict(problems=[f"extra ['{tmp}']", f"unreadable {tmp}: ValueError: unexpected file"], extra=[tmp]))
    assert [k['survived'] for k in kills] == [True, False, True] and tmp in kills[1]['cause']
    kills[0]['epochs_redone'] = 2
    fi.blame(kills, dict(problems=[], extra=[]))
    assert [k['survived'] for k in kills] == [False, True, True] and 'trained 2 epoch(s) again' in kills[0]['cause']
    del kills[0]['epochs_redone']
    fi.blame(kills, dict(problems=['score 0.3 differs'], extra=[]))
    assert [k['survived'] for k in kills] == [False] * 3
    fi.blame(kills, dict(problems=['attempt 3 exited 1: holds an unfinished run']), failure='attempt 3 exited 1: holds an unfinished run')
    assert [k['survived'] for k in kills] == [True, True, False] and 'unfinished' in kills[2]['cause']


def test_help():
    r = subprocess.run([sys.executable, str(REPO/'bench'/'fault_injection.py'), '--help'], capture_output=True, text=True, env=cli_env())
    assert r.returncode == 0 and '--train-kills' in r.stdout and '--json' in r.stdout


@pytest.mark.skipif(not os.environ.get('SALT_NB_SLOW'), reason='set SALT_NB_SLOW=1 to kill and resume training runs (~5 min)')
def test_benchmark_small(tmp_path):
    "A few kills of each command: every one survived, and the JSON report says so."
    report = tmp_path/'faults.json'
    r = subprocess.run([sys.executable, str(REPO/'bench'/'fault_injection.py'), '--train-kills', '4', '--min-per-phase', '1',
                        '--epochs', '2', '--predict-kills', '2', '--mosaic-kills', '2', '--work', tmp_path/'work', '--json', report],
                       capture_output=True, text=True, timeout=1800, env=cli_env(OMP_WAIT_POLICY='PASSIVE'))
    assert report.exists(), r.stdout[-3000:] + r.stderr[-3000:]
    rep = json.loads(report.read_text())
    phases = Counter(k['phase'] for k in rep['train']['kills'])
    assert len(rep['train']['kills']) >= 4 and all(phases[p] >= 1 for p in fi.PHASES), phases
    assert len(rep['predict']['kills']) == 2 and len(rep['mosaic']['kills']) == 2
    assert r.returncode == 0 and rep['failed'] == 0, r.stdout[-3000:]
    assert 'wall time' in r.stdout and 'salt_train: all' in r.stdout

"Data-parallel training: `salt_train` as 2 CPU processes (gloo) under `accelerate launch` (slow: set SALT_NB_SLOW=1)."
import importlib.util, json, os, socket, subprocess, sys
import pytest, torch, yaml

from conftest import REPO, cli_env, tiny_synth

pytestmark = [
    pytest.mark.skipif(not os.environ.get('SALT_NB_SLOW'), reason='set SALT_NB_SLOW=1 to run 2-process training (~30 s)'),
    pytest.mark.skipif(importlib.util.find_spec('accelerate') is None, reason='accelerate is not installed'),
    pytest.mark.skipif(not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
                       reason='torch.distributed without gloo'),
]


def free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def launch(tmp_path, n, *args, timeout=600, target=('-m', 'salt_nb.train')):
    "`accelerate launch` `n` CPU processes of `python -m salt_nb.train args` (or of `target`); the CompletedProcess (text output)."
    cmd = [sys.executable, '-m', 'accelerate.commands.launch', '--multi_gpu', '--num_processes', str(n),
           '--num_machines', '1', '--mixed_precision', 'no', '--dynamo_backend', 'no', '--main_process_port', str(free_port()),
           *map(str, target), *map(str, args), '--device', 'cpu']
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=cli_env(SALT_NB_CACHE=tmp_path/'cache', OMP_NUM_THREADS=1, OMP_WAIT_POLICY='PASSIVE'))


def test_two_process_kfold(tmp_path_factory, tmp_path):
    data = tiny_synth(tmp_path_factory, (6, 4))               # 24 labeled tiles: 12 to train per fold, 6 per process
    cfg = tmp_path/'tiny.yaml'
    cfg.write_text(yaml.safe_dump(dict(name='ddp', model='tiny', geometry='resize64', bs=3, lr=0.003, schedule='one_cycle',
                                       epochs=2, n_folds=2, folds=None)))
    out = tmp_path/'run'
    r = launch(tmp_path, 2, data, '--out', out, '--config', cfg, '--quiet')
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for k in (0, 1): assert f'data-parallel: process {k} of 2 (gloo, cpu)' in r.stdout, r.stdout   # both ranks ran
    assert r.stdout.count('fold 0 epoch 2/2') == 1 and r.stdout.count('post-processing tuned') == 1   # rank 0 reports
    assert 'train_loss nan' not in r.stdout                   # every process had batches to train on
    assert sorted(p.name for p in (out/'checkpoints').iterdir()) == ['fold0_best.pth', 'fold1_best.pth']
    assert not list(out.rglob('.*tmp*'))                      # no leftover temporary files of concurrent writers
    m = json.loads((out/'metrics.json').read_text())
    assert [f['fold'] for f in m['folds']] == [0, 1] and m['oof']['n'] == 24
    assert [len(open(out/'logs'/f'fold{k}.csv').read().splitlines()) for k in (0, 1)] == [3, 3]   # header + 2 epochs, once
    from salt_nb.runs import load_checkpoint
    load_checkpoint(out/'checkpoints'/'fold0_best.pth')       # saved from inside DDP, loads into a plain model


def test_two_process_budget(tmp_path_factory, tmp_path):
    "`--minutes` with the recipe: both processes follow rank 0's re-plans (one schedule, no hang) and the run keeps its budget."
    data = tiny_synth(tmp_path_factory, (6, 4))
    cfg = tmp_path/'recipe.yaml'
    cfg.write_text(yaml.safe_dump(dict(name='ddp_budget', model='tiny', geometry='resize64', bs=3, lr=0.003, schedule='recipe',
                                       warmup_epochs=4, lovasz_epochs=0, n_cycles=1, cycle_len=12, lovasz_loss='lovasz_bce',
                                       n_folds=2, folds=[0])))
    out = tmp_path/'run'
    r = launch(tmp_path, 2, data, '--out', out, '--config', cfg, '--quiet', '--minutes', 1)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.count('budget: after epoch') >= 1 and 'of the 1-min budget' in r.stdout, r.stdout[-3000:]
    from salt_nb.runs import RunConfig
    c = RunConfig.from_yaml(out/'config.yaml')                # the schedule as trained, re-plans included
    n = c.warmup_epochs + c.lovasz_epochs + c.cycle_len
    assert len(open(out/'logs'/'fold0.csv').read().splitlines()) == n + 1, (c, r.stdout[-3000:])
    assert r.stdout.count(f'fold 0 epoch {n}/{n}') == 1


def test_two_process_time_to_score(tmp_path_factory, tmp_path):
    "bench/time_to_score.py data-parallel: the other process returns after training, rank 0 scores and prints once."
    data = tiny_synth(tmp_path_factory, (6, 4))
    cfg = tmp_path/'tiny.yaml'
    cfg.write_text(yaml.safe_dump(dict(name='ddp_tts', model='tiny', geometry='resize64', bs=2, lr=0.003, schedule='one_cycle',
                                       epochs=1)))
    out = tmp_path/'run'
    r = launch(tmp_path, 2, '--config', cfg, '--data', data, '--epochs', 1, '--out', out,
               target=[REPO/'bench'/'time_to_score.py'])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for k in (0, 1): assert f'data-parallel: process {k} of 2 (gloo, cpu)' in r.stdout, r.stdout
    assert r.stdout.count('time_to_score: ddp_tts') == 1 and r.stdout.count('final model') == 1, r.stdout[-3000:]
    assert json.loads((out/'time_to_score.json').read_text())['epochs'] == 1

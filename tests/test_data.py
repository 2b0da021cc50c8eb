"End-to-end checks of the data layer on a tiny folder and, when present, on the real data in ../shared/tgs."
import pytest
from salt_nb.data import load_tgs, find_tgs, rle_encode, save_packed, _write_folder

def test_load_and_pack_roundtrip(tmp_path, monkeypatch):
    monkeypatch.setenv('SALT_NB_CACHE', str(tmp_path/'cache'))
    d = load_tgs(_write_folder(tmp_path/'tgs', n_train=5, n_test=4), progress=False)
    p = load_tgs(save_packed(d, tmp_path/'packed.npz'))
    assert (p.train.images == d.train.images).all() and (p.train.masks == d.train.masks).all()
    assert list(p.test.ids) == list(d.test.ids) and sorted(p.sample_ids) == sorted(d.test.ids)

def test_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere'): load_tgs(tmp_path/'nowhere')

@pytest.mark.skipif(find_tgs() is None, reason='no ../shared/tgs (real TGS data) on this machine')
def test_real_data_loads_and_matches_csv():
    import pandas as pd
    tgs = find_tgs(); d = load_tgs(tgs, progress=False)
    assert d.train.images.shape == (3000, 101, 101) and len(d.test) == 19000
    rle = pd.read_csv(tgs/'train.csv', keep_default_na=False).set_index('id').rle_mask
    assert all(rle_encode(m) == rle[i] for i, m in zip(d.train.ids[:500], d.train.masks[:500]))
    assert set(d.sample_ids) == set(d.test.ids)

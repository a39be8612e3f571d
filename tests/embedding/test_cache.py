"""grader.embedding.cache: the persistent embedding cache, alone (fake vectors) and behind the real Encoder."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from grader.embedding.cache import CacheWarning, EmbeddingCache, default_cache_path, model_fingerprint, resolve_cache

ROOT = Path(__file__).resolve().parents[2]
DIM = 8


def unit_rows(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


# ---- where the cache lives --------------------------------------------------------------------


def test_default_location_policy(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_path({}) == tmp_path / "home" / ".cache" / "grader" / "embeddings.sqlite"
    assert (
        default_cache_path({"XDG_CACHE_HOME": str(tmp_path / "xdg")})
        == tmp_path / "xdg" / "grader" / "embeddings.sqlite"
    )
    assert default_cache_path({"GRADER_CACHE": str(tmp_path / "c.sqlite")}) == tmp_path / "c.sqlite"
    assert default_cache_path({"GRADER_CACHE": "off"}) is None
    assert default_cache_path({"GRADER_CACHE": "OFF "}) is None
    # the CLI's rule: --no-cache, then --cache PATH, then the default
    assert resolve_cache(tmp_path / "x", disabled=True, environ={}) is None
    assert resolve_cache(tmp_path / "x", environ={"GRADER_CACHE": "off"}) == tmp_path / "x"
    assert resolve_cache(None, environ={"GRADER_CACHE": "off"}) is None


def test_model_fingerprint_follows_content_not_location(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        folder.mkdir()
        (folder / "config.json").write_text('{"hidden": 8}')
        (folder / "model.safetensors").write_bytes(bytes(range(256)) * 100_000)  # over the whole-file limit: sampled
    assert model_fingerprint(a) == model_fingerprint(b)
    (b / "config.json").write_text('{"hidden": 9}')
    assert model_fingerprint(a) != model_fingerprint(b)
    weights = bytearray((a / "model.safetensors").read_bytes())
    weights[0] ^= 1
    (a / "model.safetensors").write_bytes(bytes(weights))
    assert model_fingerprint(a) != model_fingerprint(b)


# ---- hits, misses, models ---------------------------------------------------------------------


def test_stores_and_finds_vectors_per_model(tmp_path):
    path = tmp_path / "cache.sqlite"
    rows = unit_rows(3)
    with EmbeddingCache(path, "model-a", DIM) as cache:
        vectors, found = cache.get_many(["x", "y", "z"])
        assert not found.any() and cache.misses == 3
        cache.put_many(["x", "y", "z"], rows)
    with EmbeddingCache(path, "model-a", DIM) as again:  # another run: the file persists
        vectors, found = again.get_many(["z", "new", "x"])
        assert found.tolist() == [True, False, True]
        assert np.array_equal(vectors[0], rows[2]) and np.array_equal(vectors[2], rows[0])
        assert not vectors[1].any()
        assert (again.hits, again.misses) == (2, 1)
        vectors, found = again.get_many(["x", "new", "x"])  # repeated texts are looked up once
        assert found.tolist() == [True, False, True] and np.array_equal(vectors[2], rows[0])
    with EmbeddingCache(path, "model-b", DIM) as other:  # another model never sees model-a's vectors
        assert not other.get_many(["x"])[1].any()


def test_encoder_encodes_only_what_the_cache_lacks(encoder, tmp_path):
    texts = ["ReLU keeps positive values.", "Xavier keeps the variance constant.", "A cat sat."]
    plain = encoder.encode(texts)
    first = encoder.with_cache(tmp_path / "cache.sqlite")
    assert first.encode(texts) == pytest.approx(plain, abs=1e-5)
    assert (first.encoded, first.from_cache) == (3, 0)

    second = encoder.with_cache(tmp_path / "cache.sqlite")  # a second run over mostly the same answers
    calls = []
    again = second.encode(
        [texts[2], "Dropout prevents overfitting.", texts[0], texts[2]], progress=lambda d, t: calls.append((d, t))
    )
    assert (second.encoded, second.from_cache) == (1, 2)
    assert again[0] == pytest.approx(plain[2], abs=1e-6) and again[2] == pytest.approx(plain[0], abs=1e-6)
    assert np.array_equal(again[0], again[3])
    assert calls[0] == (2, 3) and calls[-1] == (3, 3)

    third = encoder.with_cache(tmp_path / "cache.sqlite")
    third.encode(texts)
    assert (third.encoded, third.from_cache) == (0, 3)


def test_precision_and_model_content_are_part_of_the_key(encoder, tmp_path):
    identity = encoder.identity
    assert identity.startswith("all-MiniLM-L6-v2|") and "|float32|" in identity
    assert identity == encoder.with_cache(tmp_path / "c.sqlite").cache.model


# ---- never trusted: damaged or foreign files ---------------------------------------------------


def test_garbage_file_is_moved_aside_and_rebuilt(tmp_path):
    path = tmp_path / "cache.sqlite"
    path.write_bytes(b"this is not a database, just some text that happens to be here" * 100)
    with pytest.warns(CacheWarning, match="moved it to cache.sqlite.corrupt"):
        cache = EmbeddingCache(path, "m", DIM)
    assert (tmp_path / "cache.sqlite.corrupt").read_bytes().startswith(b"this is not a database")
    cache.put_many(["x"], unit_rows(1))
    assert cache.get_many(["x"])[1].all()
    cache.close()


def test_foreign_database_is_not_trusted_nor_destroyed(tmp_path):
    path = tmp_path / "cache.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, exam TEXT)")
    db.execute("INSERT INTO runs VALUES (1, 'dl-midsem')")
    db.commit()
    db.close()
    with pytest.warns(CacheWarning, match="not a grader embedding cache"):
        cache = EmbeddingCache(path, "m", DIM)
    assert cache.enabled and len(cache) == 0
    cache.close()
    kept = sqlite3.connect(tmp_path / "cache.sqlite.corrupt")
    assert kept.execute("SELECT exam FROM runs").fetchall() == [("dl-midsem",)]
    kept.close()


def test_wrong_schema_version_is_rebuilt(tmp_path):
    path = tmp_path / "cache.sqlite"
    EmbeddingCache(path, "m", DIM).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '99' WHERE name = 'schema'")
    db.commit()
    db.close()
    with pytest.warns(CacheWarning, match="version '99'"):
        EmbeddingCache(path, "m", DIM).close()


def test_truncated_file_never_yields_wrong_vectors(tmp_path):
    path = tmp_path / "cache.sqlite"
    texts = [f"text {i} " + "padding " * 20 for i in range(2000)]
    rows = unit_rows(len(texts), seed=1)
    with EmbeddingCache(path, "m", DIM) as cache:
        cache.put_many(texts, rows)
    size = path.stat().st_size
    with path.open("r+b") as handle:  # a copy cut short, a disk that filled up
        handle.truncate(size // 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache = EmbeddingCache(path, "m", DIM)
        vectors, found = cache.get_many(texts)
        cache.put_many(texts, rows)  # the run stores its fresh vectors: the cache works again
        assert cache.get_many(texts)[1].all()
        cache.close()
    assert np.array_equal(vectors[found], rows[found])  # whatever was read back is exactly what was stored
    assert not found.all()
    assert any(issubclass(w.category, CacheWarning) for w in caught)


def test_vector_of_the_wrong_size_empties_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(
        "grader.embedding.cache.READ_CHUNK", 1
    )  # the good row is read first: it must not be kept either
    path = tmp_path / "cache.sqlite"
    with EmbeddingCache(path, "m", DIM) as cache:
        cache.put_many(["a", "b"], unit_rows(2))
        key = cache._key("b")
    db = sqlite3.connect(path)
    db.execute("UPDATE vectors SET vector = ? WHERE key = ?", (np.ones(3, np.float32).tobytes(), key))
    db.commit()
    db.close()
    with EmbeddingCache(path, "m", DIM) as cache:
        with pytest.warns(CacheWarning, match="has 12 bytes where 8 float32 take 32"):
            vectors, found = cache.get_many(["a", "b"])
        assert not found.any() and not vectors.any() and len(cache) == 0


def test_float64_or_nan_or_non_unit_rows_are_refused(tmp_path):
    path = tmp_path / "cache.sqlite"
    for bad, message in (
        (unit_rows(1).astype(np.float64).tobytes(), "has 64 bytes"),  # float64
        (unit_rows(1, dim=DIM // 2).astype(np.float64).tobytes(), "not unit length|NaN"),  # float64, same byte count
        (unit_rows(1).astype(np.float16).tobytes(), "has 16 bytes"),
        (np.full(DIM, np.nan, np.float32).tobytes(), "NaN"),
        ((2 * unit_rows(1)).tobytes(), "not unit length"),
    ):
        with EmbeddingCache(path, "m", DIM) as cache:
            cache.put_many(["a"], unit_rows(1))
            key = cache._key("a")
        db = sqlite3.connect(path)
        db.execute("UPDATE vectors SET vector = ? WHERE key = ?", (bad, key))
        db.commit()
        db.close()
        with EmbeddingCache(path, "m", DIM) as cache, pytest.warns(CacheWarning, match=message):
            assert not cache.get_many(["a"])[1].any()


def test_encoder_recovers_from_a_garbage_cache(encoder, tmp_path):
    path = tmp_path / "cache.sqlite"
    path.write_bytes(b"\x00garbage" * 1000)
    with pytest.warns(CacheWarning):
        cached = encoder.with_cache(path)
    texts = ["Negative gradients are evidence against the class.", "ReLU zeroes them."]
    assert cached.encode(texts) == pytest.approx(encoder.encode(texts), abs=1e-5)
    assert cached.encoded == 2


def test_unusable_location_costs_a_warning_not_the_run(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    with pytest.warns(CacheWarning, match="going on without it"):
        cache = EmbeddingCache(blocker / "cache.sqlite", "m", DIM)
    assert not cache.enabled
    cache.put_many(["x"], unit_rows(1))
    assert not cache.get_many(["x"])[1].any()


# ---- bounded: least recently used evicted in batches --------------------------------------------


def test_eviction_keeps_the_bound_and_the_recently_used(tmp_path):
    clock = Clock()
    cache = EmbeddingCache(tmp_path / "cache.sqlite", "m", DIM, max_entries=100, clock=clock)
    old = [f"old {i}" for i in range(60)]
    cache.put_many(old, unit_rows(60))
    clock.now += 7200
    assert cache.get_many(old[:10])[1].all()  # used again: these are recent now
    clock.now += 7200
    new = [f"new {i}" for i in range(60)]
    cache.put_many(new, unit_rows(60, seed=2))
    assert len(cache) == 90 and cache.evicted == 30  # one batch, down to 90 % of the bound
    assert cache.get_many(old[:10])[1].all()
    assert cache.get_many(new)[1].all()
    assert cache.get_many(old[10:])[1].sum() == 20  # 30 of the 50 least recently used went
    cache.close()


def test_eviction_gives_disk_space_back(tmp_path):
    path = tmp_path / "cache.sqlite"
    cache = EmbeddingCache(path, "m", 384, max_entries=200)
    cache.put_many([f"t{i}" for i in range(2000)], unit_rows(2000, dim=384))
    cache._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert len(cache) == 180
    assert path.stat().st_size < 2000 * 384 * 4 / 5  # the evicted 90 % no longer take room
    cache.close()


# ---- two processes at once ----------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from pathlib import Path
    sys.path.insert(0, sys.argv[4])
    from grader.embedding.cache import EmbeddingCache

    path, name, start = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    cache = EmbeddingCache(path, "m", 8)
    while time.time() < start:  # both processes begin together
        time.sleep(0.001)
    for batch in range(40):
        texts = [f"shared {batch} {i}" for i in range(25)] + [f"{name} {batch} {i}" for i in range(25)]
        rows = np.zeros((50, 8), np.float32)
        rows[:, 0] = 1.0
        rows[25:, 1 + (name == "b")] = 1.0
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        cache.get_many(texts)
        cache.put_many(texts, rows)
    print(len(cache))
    """
)


def test_two_processes_write_at_the_same_time(tmp_path):
    import time

    path = tmp_path / "cache.sqlite"
    EmbeddingCache(path, "m", DIM).close()
    start = str(time.time() + 1.5)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), name, start, str(ROOT)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0, err
        assert "Warning" not in err, err
    with EmbeddingCache(path, "m", DIM) as cache:
        assert len(cache) == 40 * 75
        for name, column in (("a", 1), ("b", 2)):
            vectors, found = cache.get_many([f"{name} {b} {i}" for b in range(40) for i in range(25)])
            assert found.all()
            assert np.allclose(vectors[:, column], 2**-0.5) and np.allclose(vectors[:, 0], 2**-0.5)
        assert cache.get_many([f"shared {b} {i}" for b in range(40) for i in range(25)])[1].all()

"""Nothing silent, nothing lost: bad files from outside and mistakes on the command line.

Each bad file (CSV, npz, TVB zip or folder) raises ValueError or OSError whose message names the file, and the zip
member, array or line where one is at fault. Each command-line mistake ends with exit status 2 and one line
``jr-jax <command>: error: …`` naming the option, before anything is computed and without leaving a folder behind.
"""

import functools
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

import jr_jax as jr
from jr_jax import cli, connectome, data

# -- builders of bad files: each writes into a folder and returns the path to load ------------------------------


def _text(name, text):
    def build(tmp):
        path = tmp / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path
    return build


def _times(t, header="time,value"):
    """A CSV with a time column ``t`` (seconds, or whatever the row means to get wrong) and a value column."""
    t = np.asarray(t, dtype=float)
    lines = [header] + [f"{float(x)!r},{float(np.sin(x))!r}" for x in t]
    return _text("signal.csv", "\n".join(lines) + "\n")


T = np.arange(20) / 500.0                               # 500 Hz, as a good file would hold


def _npz(**arrays):
    def build(tmp):
        path = tmp / "conn.npz"
        np.savez(path, **arrays)
        return path
    return build


def _npz_bytes(cut=None, npy=False):
    def build(tmp):
        path = tmp / "conn.npz"
        if npy:
            np.save(tmp / "weights.npy", np.ones((3, 3)))
            path.write_bytes((tmp / "weights.npy").read_bytes())
        else:
            np.savez(path, weights=np.ones((3, 3)))
            path.write_bytes(path.read_bytes()[:cut])
        return path
    return build


def _matrix(n, bad=None):
    rows = [" ".join("0.5" if i != j else "0" for j in range(n)) for i in range(n)]
    if bad:
        line, text = bad
        rows[line - 1] = text
    return "\n".join(rows) + "\n"


def _tvb(members, folder=False):
    """A TVB connectivity zip (or folder) under conn/ with ``members`` {name: text or bytes}."""
    def build(tmp):
        if folder:
            root = tmp / "tvb"
            (root / "conn").mkdir(parents=True)
            for name, text in members.items():
                (root / "conn" / name).write_bytes(text if isinstance(text, bytes) else text.encode())
            return root
        path = tmp / "connectivity.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for name, text in members.items():
                z.writestr(name if "/" in name else f"conn/{name}", text)
        return path
    return build


def _damaged(how):
    """A TVB zip, then cut in half ('truncated'), its member's compressed bytes overwritten ('corrupt'), or its
    stated sizes shrunk below the 60 MB it inflates to ('liar': the zip understates its member)."""
    def build(tmp):
        path = tmp / "connectivity.zip"
        noise = np.random.default_rng(0).random((40, 40))      # incompressible enough to span many bytes
        payload = b"0 " * (30 * 2 ** 20) if how == "liar" else "\n".join(" ".join(f"{x:.6f}" for x in row)
                                                                          for row in noise).encode()
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("conn/weights.txt", payload)
        raw = bytearray(path.read_bytes())
        if how == "truncated":
            raw = raw[: len(raw) // 2]
        elif how == "corrupt":
            start = raw.index(b"PK\x03\x04") + 30 + len("conn/weights.txt")
            raw[start + 5: start + 40] = b"\xff" * 35
        else:
            i, j = raw.index(b"PK\x03\x04"), raw.index(b"PK\x01\x02")
            raw[i + 22: i + 26] = raw[j + 24: j + 28] = struct.pack("<I", 100)
        path.write_bytes(bytes(raw))
        return path
    return build


def _bomb(tmp):
    """60 MB of zeros in a zip of about 60 kB (read with the member limit lowered to 16 MiB)."""
    path = tmp / "connectivity.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("conn/weights.txt", b"0" * (60 * 2 ** 20))
    return path


def _big_folder_file(tmp):
    root = tmp / "tvb"
    root.mkdir()
    (root / "weights.txt").write_bytes(b"0 " * (9 * 2 ** 20))      # 18 MiB, over the lowered 16 MiB
    return root


CSV, NPZ, TVB = data.read_csv, connectome.load_npz, connectome.load_tvb
W3 = np.ones((3, 3)) - np.eye(3)

# (id, builder, loader, exception type, fragments the message must hold besides the file's path)
BAD_FILES = [
    ("csv-empty", _text("signal.csv", ""), CSV, ValueError, ["empty"]),
    ("csv-header-only", _text("signal.csv", "time,value\n"), CSV, ValueError, ["at least two rows"]),
    ("csv-one-row", _text("signal.csv", "time,value\n0.0,1.0\n"), CSV, ValueError, ["at least two rows", "got 1"]),
    ("csv-text-in-number", _text("signal.csv", "time,value\n0,1\n0.002,abc\n0.004,2\n"), CSV, ValueError,
     ["line 3", "column 2", "'abc'"]),
    ("csv-empty-cell", _text("signal.csv", "time,value\n0,1\n0.002,\n0.004,2\n"), CSV, ValueError,
     ["line 3", "empty cell"]),
    ("csv-ragged", _text("signal.csv", "time,value\n0,1\n0.002\n0.004,2\n"), CSV, ValueError, ["line 3", "column"]),
    ("csv-nan", _text("signal.csv", "time,value\n0,1\n0.002,2\n0.004,nan\n0.006,3\n"), CSV, ValueError,
     ["line 4", "column 2", "finite"]),
    ("csv-inf-time", _text("signal.csv", "time,value\n0,1\n0.002,2\ninf,3\n"), CSV, ValueError,
     ["line 4", "column 1", "finite"]),
    ("csv-time-in-ms", _times(np.arange(20) * 2.0), CSV, ValueError, ["milliseconds", "divide by 1000"]),
    ("csv-time-in-us", _times(np.arange(20) * 2000.0), CSV, ValueError, ["microseconds"]),
    ("csv-rate-too-high", _times(np.arange(20) * 1e-6), CSV, ValueError, ["100 kHz", "seconds"]),
    ("csv-uneven-time", _times(np.r_[T[:5], T[6:]]), CSV, ValueError, ["line 7", "uniformly"]),
    ("csv-decreasing-time", _times(np.r_[T[:8], T[6], T[9:]]), CSV, ValueError, ["line 10", "increase strictly"]),
    ("csv-repeated-time", _times(np.r_[T[:4], T[3], T[4:]]), CSV, ValueError, ["line 6", "increase strictly"]),
    ("csv-decreasing-freq", _times([1.0, 2.0, 3.0, 2.5, 5.0], "frequency,psd"), CSV, ValueError,
     ["line 5", "frequency"]),
    ("csv-binary", _text("signal.csv", b"\x89PNG\r\n\x1a\n\xff\xfe\x00"), CSV, ValueError, ["not a text file"]),
    ("csv-time-only", _text("signal.csv", "time\n0\n0.002\n0.004\n"), CSV, ValueError,
     ["time column", "column of their own"]),
    ("csv-header-width", _times(T, "time"), CSV, ValueError, ["line 1", "header names 1 column"]),
    ("csv-missing", lambda tmp: tmp / "nowhere.csv", CSV, FileNotFoundError, []),
    ("npz-no-weights", _npz(lengths_mm=W3), NPZ, ValueError, ["no 'weights'", "lengths_mm"]),
    ("npz-not-square", _npz(weights=np.ones((3, 4))), NPZ, ValueError, ["array 'weights'", "square", "(3, 4)"]),
    ("npz-nan", _npz(weights=np.where(np.eye(3) > 0, np.nan, 1.0)), NPZ, ValueError,
     ["array 'weights'", "NaN", "(0, 0)"]),
    ("npz-negative", _npz(weights=-W3), NPZ, ValueError, ["array 'weights'", ">= 0"]),
    ("npz-text-weights", _npz(weights=np.array([["a", "b"], ["c", "d"]])), NPZ, ValueError,
     ["array 'weights'", "real numbers"]),
    ("npz-lengths-shape", _npz(weights=W3, lengths_mm=np.ones((2, 2))), NPZ, ValueError,
     ["array 'lengths_mm'", "(3, 3)", "(2, 2)"]),
    ("npz-centres-shape", _npz(weights=W3, centres_mm=np.ones((3, 2))), NPZ, ValueError, ["array 'centres_mm'"]),
    ("npz-labels-count", _npz(weights=W3, labels=np.array(["a", "b"])), NPZ, ValueError, ["array 'labels'"]),
    ("npz-object-array", _npz(weights=W3, labels=np.array(["a", 1, None], dtype=object)), NPZ, ValueError,
     ["array 'labels'", "not a readable NumPy array"]),
    ("npz-not-a-zip", _text("conn.npz", "weights\n1 2\n3 4\n"), NPZ, ValueError, ["not a readable zip"]),
    ("npz-truncated", _npz_bytes(cut=200), NPZ, ValueError, ["not a readable zip"]),
    ("npz-is-npy", _npz_bytes(npy=True), NPZ, ValueError, [".npy file"]),
    ("tvb-garbage-zip", _text("connectivity.zip", b"PK\x03\x04" + bytes(range(256)) * 8), TVB, ValueError,
     ["not a readable zip"]),
    ("tvb-truncated-zip", _damaged("truncated"), TVB, ValueError, ["not a readable zip"]),
    ("tvb-corrupt-member", _damaged("corrupt"), TVB, ValueError, ["member conn/weights.txt", "cannot be read"]),
    ("tvb-zip-understates-size", _damaged("liar"), TVB, ValueError, ["member conn/weights.txt", "cannot be read"]),
    ("tvb-zip-bomb", _bomb, TVB, ValueError, ["member conn/weights.txt", "62914560 bytes", "over the limit"]),
    ("tvb-no-weights", _tvb({"tract_lengths.txt": _matrix(3)}), TVB, ValueError, ["no weights.txt"]),
    ("tvb-garbage-weights", _tvb({"weights.txt": _matrix(3, (2, "0.5 0 garbage"))}), TVB, ValueError,
     ["member conn/weights.txt", "line 2", "column 3", "'garbage'"]),
    ("tvb-binary-weights", _tvb({"weights.txt": b"\xff\xd8\xff\xe0" * 10}), TVB, ValueError,
     ["member conn/weights.txt", "not a text file"]),
    ("tvb-empty-weights", _tvb({"weights.txt": "\n\n"}), TVB, ValueError, ["member conn/weights.txt", "no numbers"]),
    ("tvb-ragged-weights", _tvb({"weights.txt": _matrix(3, (3, "0.5 0.5"))}), TVB, ValueError,
     ["member conn/weights.txt", "line 3"]),
    ("tvb-nan-weights", _tvb({"weights.txt": _matrix(3, (2, "0.5 nan 0.5"))}), TVB, ValueError,
     ["member conn/weights.txt", "line 2", "column 2", "finite"]),
    ("tvb-weights-not-square", _tvb({"weights.txt": "0 1 1\n1 0 1\n"}), TVB, ValueError,
     ["member conn/weights.txt", "square", "(2, 3)"]),
    ("tvb-lengths-shape", _tvb({"weights.txt": _matrix(3), "tract_lengths.txt": _matrix(2)}), TVB, ValueError,
     ["member conn/tract_lengths.txt", "(3, 3)"]),
    ("tvb-centres-line", _tvb({"weights.txt": _matrix(2), "centres.txt": "a 1 2 3\nb 1 two 3\n"}), TVB, ValueError,
     ["member conn/centres.txt", "line 2"]),
    ("tvb-centres-count", _tvb({"weights.txt": _matrix(3), "centres.txt": "a 1 2 3\nb 1 2 3\n"}), TVB, ValueError,
     ["member conn/centres.txt", "2 region(s)"]),
    ("tvb-weights-twice", _tvb({"weights.txt": _matrix(2), "other/weights.txt": _matrix(2)}), TVB, ValueError,
     ["twice", "conn/weights.txt", "other/weights.txt"]),
    ("tvb-folder-no-weights", _tvb({"centres.txt": "a 1 2 3\n"}, folder=True), TVB, ValueError, ["no weights.txt"]),
    ("tvb-folder-garbage", _tvb({"weights.txt": _matrix(3, (1, "x y z"))}, folder=True), TVB, ValueError,
     ["weights.txt", "line 1", "'x'"]),
    ("tvb-folder-big-file", _big_folder_file, TVB, ValueError, ["weights.txt", "over the limit"]),
    ("tvb-missing", lambda tmp: tmp / "nowhere.zip", TVB, FileNotFoundError, []),
]


@pytest.mark.parametrize("build, load, error, fragments", [row[1:] for row in BAD_FILES],
                         ids=[row[0] for row in BAD_FILES])
def test_a_bad_file_is_a_clear_error_naming_the_file(tmp_path, monkeypatch, build, load, error, fragments):
    monkeypatch.setattr(connectome, "MAX_MEMBER_BYTES", 16 * 2 ** 20)   # the bombs hold 60 MB and 18 MiB
    path = build(tmp_path)
    with pytest.raises(error) as caught:
        load(path)
    assert type(caught.value) in (ValueError, FileNotFoundError), type(caught.value)   # no subclass such as BadZipFile
    message = str(caught.value)
    assert str(path) in message and "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_good_files_still_load(tmp_path):
    """The checks refuse the rows above, not ordinary files: 2048 Hz times printed with six decimals, a TVB zip
    with comments and tabs, an npz written by save_npz."""
    t = np.round(np.arange(400) / 2048.0, 6)
    np.savetxt(tmp_path / "eeg.csv", np.c_[t, np.cos(t)], delimiter=",", header="time,value", comments="",
               fmt="%.6f")
    assert abs(data.read_csv(tmp_path / "eeg.csv").fs_hz - 2048.0) < 1.0
    path = _tvb({"weights.txt": "# weights\n" + _matrix(3).replace(" ", "\t"),
                 "centres.txt": "a 1 2 3\nb -1 2 3\nc 0 0 0\n"})(tmp_path)
    con = connectome.load_tvb(path)
    assert con.labels == ("a", "b", "c") and con.weights[0, 1] == 0.5
    con.save_npz(tmp_path / "c.npz")
    assert connectome.load_npz(tmp_path / "c.npz").labels == ("a", "b", "c")


# -- the command line ----------------------------------------------------------------------------------------------

def _files(tmp):
    """Input files the CLI rows point at."""
    np.savetxt(tmp / "erp.csv", np.c_[np.arange(50) / 500.0, np.zeros(50)], delimiter=",", header="time,value",
               comments="")
    (tmp / "garbage.csv").write_text("time,value\n0,1\n0.002,oops\n")
    np.savetxt(tmp / "ms.csv", np.c_[np.arange(50) * 2.0, np.zeros(50)], delimiter=",", header="time,value",
               comments="")
    (tmp / "garbage.zip").write_bytes(b"this is not a zip")
    _tvb({"weights.txt": _matrix(4, (2, "0.5 0 junk 0.5"))})(tmp)
    np.savetxt(tmp / "lead.csv", np.ones((2, 3)), delimiter=",")


FIT = ["fit", "--target", "{tmp}/erp.csv", "--kind"]
NET = ["network", "--connectome", "example:4"]

# (argv, what the error line must name)
CLI_MISTAKES = [
    (["regimes", "--dt", "0"], "--dt"),
    (["regimes", "--only", "nosuch"], "--only"),
    (["regimes", "--method", "rk5"], "--method"),
    (["regimes", "--seed", "-1"], "--seed"),
    (["sweep", "--param", "A=3:4:2", "--duration", "nan"], "--duration"),
    (["sweep", "--param", "A=3:4:2", "--param", "A=5:6:2"], "--param A given twice"),
    (["sweep", "--param", "A=3:4:2", "--chunk-size", "0"], "--chunk-size"),
    (["sweep", "--param", "Q=1:2:3"], "--param"),
    (["sweep", "--param", "A=4:3:5"], "--param"),
    (["sweep", "--param", "A=3:4:2", "--transient", "-1"], "--transient"),
    (["sweep"], "--param"),
    (["sweep", "--param", "A=3:4:2", "--bogus", "1"], "--bogus"),
    (["bifurcation", "--p-range", "400:0"], "--p-range"),
    (["bifurcation", "--n-sim", "-1"], "--n-sim"),
    (["bifurcation", "--dt", "inf"], "--dt"),
    (FIT + ["erp", "--steps", "0"], "--steps"),
    (FIT + ["erp", "--starts", "0"], "--starts"),
    (FIT + ["psd", "--realisations", "0"], "--realisations"),
    (FIT + ["psd", "--band", "40:2"], "--band"),
    (FIT + ["erp", "--free", "A,Q"], "--free"),
    (FIT + ["erp", "--unit", "furlong"], "--unit"),
    (FIT + ["erp", "--lr", "0"], "--lr"),
    (["fit", "--target", "{tmp}/erp.csv"], "--kind"),
    (["fit", "--target", "{tmp}/missing.csv", "--kind", "erp"], "--target: {tmp}/missing.csv"),
    (["fit", "--target", "{tmp}/garbage.csv", "--kind", "erp"], "--target: {tmp}/garbage.csv, line 3"),
    (["fit", "--target", "{tmp}/ms.csv", "--kind", "erp"], "milliseconds"),
    (NET + ["--record-ms", "0"], "--record-ms"),
    (NET + ["--record-ms", "-2"], "--record-ms"),
    (NET + ["--record-ms", "0.25", "--dt", "0.1"], "--record-ms"),
    (NET + ["--duration", "nan"], "--duration"),
    (NET + ["--speed", "0"], "--speed"),
    (NET + ["--rule", "diffusive"], "--rule"),
    (NET + ["--field-length", "-5"], "--field-length"),
    (NET + ["--lead-field", "{tmp}/lead.csv"], "--lead-field: {tmp}/lead.csv"),
    (["network", "--connectome", "example:3"], "--connectome"),
    (["network", "--connectome", "{tmp}/garbage.zip"], "--connectome: {tmp}/garbage.zip"),
    (["network", "--connectome", "{tmp}/connectivity.zip"], "member conn/weights.txt, line 2, column 3"),
]


@pytest.fixture
def nothing_computes(monkeypatch):
    """The library's computations fail the test if called: every mistake must be found before them (the stand-ins
    keep the signatures, whose defaults the parser reads)."""
    def stand_in(original):
        @functools.wraps(original)
        def computed(*args, **kwargs):
            raise AssertionError(f"{original.__name__} started before the mistake was reported")
        return computed
    for owner, name in [(jr, "simulate"), (jr, "sweep"), (jr, "fit"), (jr.analysis, "bifurcations"),
                        (jr.analysis, "limit_cycle_extrema")]:
        monkeypatch.setattr(owner, name, stand_in(getattr(owner, name)))


@pytest.mark.parametrize("argv, named", CLI_MISTAKES, ids=[" ".join(a[:1] + a[-2:]) for a, _ in CLI_MISTAKES])
def test_a_cli_mistake_is_one_error_line_exit_2_and_no_folder(tmp_path, capsys, nothing_computes, argv, named):
    _files(tmp_path)
    out = tmp_path / "new" / "out"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv] + ["--out", str(out)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"jr-jax {argv[0]}: error: "), err
    assert named.replace("{tmp}", str(tmp_path)) in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "new").exists()


def test_debug_shows_the_exception(tmp_path, nothing_computes):
    """--debug (before or after the command's name): the exception propagates with its traceback."""
    _files(tmp_path)
    for argv in (["--debug", "network", "--connectome", str(tmp_path / "garbage.zip")],
                 ["network", "--connectome", str(tmp_path / "garbage.zip"), "--debug"]):
        with pytest.raises(ValueError, match="--connectome: .*garbage.zip: not a readable zip"):
            cli.main(argv + ["--out", str(tmp_path / "out")])
        assert not (tmp_path / "out").exists()


def test_a_failed_run_leaves_the_folder_as_it_was(tmp_path, capsys, monkeypatch):
    """A run that fails after writing: a folder it created goes (parents included); in a folder that existed, what
    it added at the top goes and what was there stays, a checkpoint folder that existed whole."""
    def writes_then_fails(args):
        out = Path(args.out)
        (out / "state").mkdir(parents=True, exist_ok=True)
        (out / "state" / "chunk_new.npz").write_bytes(b"new")
        (out / "chunks").mkdir(exist_ok=True)
        (out / "chunks" / "chunk_0.npz").write_bytes(b"new")
        (out / "figure.png").write_bytes(b"new")
        raise jr.SimulationError("the state became NaN between 1.0 s and 1.1 s")

    monkeypatch.setitem(cli.COMMANDS, "bifurcation", writes_then_fails)
    assert cli.main(["bifurcation", "--out", str(tmp_path / "a" / "b" / "out")]) == 2
    assert not (tmp_path / "a").exists()
    old = tmp_path / "old"
    (old / "state").mkdir(parents=True)
    (old / "state" / "chunk_old.npz").write_bytes(b"old")
    (old / "keep.txt").write_text("mine")
    assert cli.main(["bifurcation", "--out", str(old)]) == 2
    assert sorted(p.relative_to(old).as_posix() for p in old.rglob("*")) == [
        "keep.txt", "state", "state/chunk_new.npz", "state/chunk_old.npz"]
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["jr-jax bifurcation: error: the state became NaN between 1.0 s and 1.1 s"] * 2


def test_the_zip_limit_is_a_stated_constant():
    assert connectome.MAX_MEMBER_BYTES == 256 * 2 ** 20
    assert "MAX_MEMBER_BYTES" in connectome.load_tvb.__doc__ and "MAX_MEMBER_BYTES" in connectome.load_npz.__doc__

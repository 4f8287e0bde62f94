"""Output never damages what it writes to: -o onto special files, folders and failing
writes, stdout closed, full or gone. Each case ran into a real defect before (see the
safety page of the docs, docs/safety.md); the subprocess cases run `python -m cnnscope` as a
user's shell would, each in a real process of its own: a fork of the warm interpreter
(``warm_python``, tests/warm.py), or a fresh one where the case changes the interpreter's
start-up (its encoding, its locale)."""

import json
import os
import resource
import stat
import subprocess
import sys
import threading

import pytest

from cnnscope.cli.main import main

@pytest.fixture
def cli_command(warm_python) -> list[str]:
    return [warm_python, "-m", "cnnscope"]


@pytest.fixture
def cli(cli_command):
    def call(*args, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run([*cli_command, *map(str, args)], capture_output=True, text=True,
                              timeout=120, **kwargs)

    return call


def leftovers(folder) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.endswith(".tmp"))


# ---------------------------------------------------------------------- special files


def test_a_character_device_is_written_through_not_replaced(tmp_path):
    # The defect: as root, `-o /dev/null` renamed a regular file over the null device.
    # A private node with /dev/null's numbers shows the same without touching /dev.
    node = tmp_path / "null"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs root")
    assert main(["params", "lenet5", "-f", "csv", "-o", str(node)]) == 0
    assert stat.S_ISCHR(os.stat(node).st_mode)
    assert os.stat(node).st_rdev == os.makedev(1, 3)


def test_dev_full_as_output_is_one_line_and_stays_a_device(one_line_error, run_main):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    line = one_line_error(run_main("params", "lenet5", "-o", "/dev/full"))
    assert "no space left on device" in line
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_fifo_is_written_through_to_its_reader(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = {}

    def read():
        with open(fifo, "rb") as fh:
            got["data"] = fh.read()

    reader = threading.Thread(target=read)
    reader.start()
    assert main(["params", "lenet5", "-f", "csv", "-o", str(fifo)]) == 0
    reader.join(timeout=30)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert got["data"].decode().startswith("name,type,kind")


def test_a_link_to_proc_self_fd_1_appends_to_stdout_and_stays_a_link(tmp_path, cli_command):
    link = tmp_path / "out"
    os.symlink("/proc/self/fd/1", link)
    log = tmp_path / "log.txt"
    log.write_text("earlier lines\n")
    with open(log, "a") as out:  # the shell's `>> log.txt`
        done = subprocess.run([*cli_command, "params", "lenet5", "-f", "csv", "-o", str(link)],
                              stdout=out, stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert os.path.islink(link) and os.readlink(link) == "/proc/self/fd/1"
    text = log.read_text()
    assert text.startswith("earlier lines\nname,type,kind")


def test_a_link_to_a_regular_file_rewrites_the_target_and_keeps_the_link(tmp_path):
    target = tmp_path / "real.csv"
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    os.symlink("real.csv", link)
    assert main(["params", "lenet5", "-f", "csv", "-o", str(link)]) == 0
    assert os.path.islink(link)
    assert target.read_text().startswith("name,type,kind")
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("suffix", ["/", ""])
def test_a_folder_is_refused_and_no_file_named_like_it_appears(tmp_path, capsys, suffix):
    folder = tmp_path / "out"
    folder.mkdir()
    assert main(["params", "lenet5", "-o", f"{folder}{suffix}"]) == 2
    assert "folder" in capsys.readouterr().err
    assert os.listdir(folder) == [] and sorted(os.listdir(tmp_path)) == ["out"]


def test_a_trailing_slash_on_a_new_name_is_refused(tmp_path, capsys):
    assert main(["params", "lenet5", "-o", f"{tmp_path}/new/"]) == 2
    assert "names a folder" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------- failing writes


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))


def test_a_file_size_limit_keeps_the_old_file_and_leaves_no_temporary(one_line_error, tmp_path, cli):
    old = tmp_path / "r18.csv"
    old.write_text("previous report\n")
    os.chmod(old, 0o640)
    done = cli("params", "resnet18", "-f", "csv", "-o", old, preexec_fn=_limit_file_size)
    assert "file too large" in one_line_error(done)
    assert old.read_text() == "previous report\n"
    assert stat.S_IMODE(os.stat(old).st_mode) == 0o640
    assert leftovers(tmp_path) == []


def test_a_successful_rewrite_keeps_the_files_permissions(tmp_path):
    old = tmp_path / "r.csv"
    old.write_text("x\n")
    os.chmod(old, 0o640)
    assert main(["params", "lenet5", "-f", "csv", "-o", str(old)]) == 0
    assert stat.S_IMODE(os.stat(old).st_mode) == 0o640


def test_an_unwritable_folder_is_one_line(tmp_path, monkeypatch, capsys):
    # Root ignores folder permissions, so the refusal the kernel gives a user (EACCES on
    # creating the temporary file) is given here by the call that meets it.
    import errno
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    assert main(["params", "lenet5", "-o", str(tmp_path / "r.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"cnnscope: error: cannot write '{tmp_path / 'r.txt'}': permission denied "
                   "(pick a folder you can write to)"]
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="chattr +i needs root")
def test_an_immutable_folder_refuses_even_root(one_line_error, run_main, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("this file system does not support chattr +i")
    try:
        line = one_line_error(run_main("params", "lenet5", "-o", folder / "r.txt"))
        assert "operation not permitted" in line or "permission denied" in line
    finally:
        subprocess.run(["chattr", "-i", str(folder)])
    assert os.listdir(folder) == []


def test_a_name_of_255_characters_works_and_one_too_long_is_one_line(one_line_error, run_main,
                                                                    tmp_path):
    longest = "r" * 251 + ".csv"  # NAME_MAX: the temporary name must not be longer
    assert main(["params", "lenet5", "-f", "csv", "-o", str(tmp_path / longest)]) == 0
    assert (tmp_path / longest).read_text().startswith("name,type,kind")
    assert "file name too long" in one_line_error(run_main("params", "lenet5", "-o",
                                                            tmp_path / ("r" * 300)))
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------- stdout


@pytest.fixture
def shell(cli_command):
    def call(command: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                              timeout=120, env={**os.environ, "CNNSCOPE": " ".join(cli_command)})

    return call


def test_closed_stdout_is_one_line(one_line_error, shell):
    done = shell('$CNNSCOPE params lenet5 >&-')
    assert "standard output is closed" in one_line_error(done)


def test_full_stdout_is_one_line(one_line_error, shell):
    done = shell('$CNNSCOPE params lenet5 -f json > /dev/full')
    assert "no space left on device" in one_line_error(done)


def test_a_reader_that_goes_away_ends_quietly_with_the_commands_own_code(tmp_path, shell):
    done = shell('$CNNSCOPE params resnet18 | head -1 >/dev/null; echo "${PIPESTATUS[0]}"')
    assert done.stdout.strip() == "0" and done.stderr == ""
    # The gate's verdict survives a closed pipe: drift is still exit 1.
    lock = tmp_path / "l.json"
    assert main(["snapshot", "lenet5", "-o", str(lock)]) == 0
    data = json.loads(lock.read_text())
    data["models"][0]["params"] += 1
    lock.write_text(json.dumps(data))
    done = shell(f'$CNNSCOPE check {lock} | head -1 >/dev/null; echo "${{PIPESTATUS[0]}}"')
    assert done.stdout.strip() == "1" and done.stderr == ""


@pytest.mark.parametrize("env", [{"PYTHONIOENCODING": "ascii"}, {"LC_ALL": "C", "LANG": "C"}])
def test_tables_fall_back_to_ascii_where_the_terminal_cannot_show_boxes(env):
    # a fresh interpreter: the encoding and locale are chosen at start-up (warm_python would
    # hand these variables to the real interpreter itself)
    done = subprocess.run([sys.executable, "-m", "cnnscope", "params", "lenet5"],
                          capture_output=True, timeout=120, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode("ascii")  # fails on any byte that is not ASCII
    assert "conv1" in text.lower() or "c1" in text.lower()
    assert "Traceback" not in done.stderr.decode()


def test_box_drawing_becomes_ascii_and_the_rest_question_marks():
    from cnnscope.cli.common import encodable

    assert encodable("┏━┳━┓ │x│ 3×3 ☃", "ascii") == "+-+-+ |x| 3x3 ?"
    assert encodable("┏━┓", "utf-8") == "┏━┓"


@pytest.mark.parametrize("columns", ["0", "-5", "abc", "99999999999999999999"])
def test_nonsense_columns_are_treated_as_unset(columns, run_main, monkeypatch):
    monkeypatch.setenv("COLUMNS", columns)
    done = run_main("params", "lenet5")  # captured: not a terminal, as a pipe
    assert done.exit_code == 0, done.stderr
    lines = done.stdout.splitlines()
    table = lines[: next(i for i, line in enumerate(lines) if line.startswith("params "))]
    widths = {len(line) for line in table}  # piped: plain text, no box (issue 13)
    assert "total" in done.stdout and widths and max(widths) <= 160  # piped output's default


# ---------------------------------------------------------------------- strict JSON


def _strict(text: str):
    def refuse(name):
        raise AssertionError(f"{name} in JSON output")

    return json.loads(text, parse_constant=refuse)


def test_json_never_holds_nan_or_infinity():
    from cnnscope.fileio import strict_json

    text = strict_json({"a": float("nan"), "b": [float("inf"), -float("inf"), 1.5], "c": 2})
    assert _strict(text) == {"a": None, "b": [None, None, 1.5], "c": 2}


def _stable_entry(**fields):
    """A cache entry as a stable measurement on this machine writes it."""
    import torch

    from cnnscope.benchmark.env import device_name

    return dict(device_name=device_name(torch.device("cpu")), measured_at="2026-12-01T00:00:00+00:00",
                torch_version=torch.__version__, stable=True, spread=0.01, **fields)


@pytest.mark.parametrize("tflops", ["NaN", "Infinity", "-1.0", "0", '"fast"', "[]"])
def test_a_cached_ceiling_that_is_not_a_positive_finite_number_is_measured_again(tflops):
    import torch

    from cnnscope.benchmark.ceiling import cached_entry

    cpu = torch.device("cpu")
    entry = _stable_entry(dtype="fp32", n=512, tflops=json.loads(tflops))
    assert cached_entry(entry, cpu, "fp32") is None
    good = dict(entry, tflops=0.068)
    assert cached_entry(good, cpu, "fp32").tflops == 0.068
    assert cached_entry(["not", "a", "mapping"], cpu, "fp32") is None


@pytest.mark.parametrize("rate", ["NaN", "Infinity", "-1.0", "0", '"fast"', "{}"])
def test_a_cached_copy_bandwidth_that_is_not_a_positive_finite_number_is_measured_again(rate):
    import torch

    from cnnscope.benchmark.bandwidth import _cached_entry

    cpu = torch.device("cpu")
    entry = _stable_entry(nbytes=1048576, bytes_per_s=json.loads(rate))
    assert _cached_entry(entry, cpu) is None
    assert _cached_entry(dict(entry, bytes_per_s=2.5e10), cpu).bytes_per_s == 2.5e10
    assert _cached_entry(["not", "a", "mapping"], cpu) is None

"""Hardware profiles: built-ins, the TOML file and its validation, and this machine's records."""

from __future__ import annotations

import dataclasses

import pytest

from kb.errors import KBError
from search.hardware import (detect_machine, hardware_record, offered, threads_used,
                             unusable_reason)
from search.profiles import (BUILTIN_PROFILES, CUDA_PROVIDER, PROFILES_FILE, Profile,
                             all_profiles, append_profile, find_profile, read_profiles_file)


@pytest.fixture(scope="module")
def machine():
    return detect_machine()


def test_detect_machine_describes_this_machine(machine):
    import onnxruntime
    import psutil

    assert machine.cores >= 1
    assert machine.memory_mb == pytest.approx(psutil.virtual_memory().total / 2**20, abs=1)
    assert machine.runtime_version == onnxruntime.__version__
    assert "CPUExecutionProvider" in machine.providers
    assert machine.cpu_model and machine.os


def test_hardware_ids_are_stable_and_differ_by_profile(machine):
    again = detect_machine()
    first = {name: hardware_record(machine, p).hardware_id for name, p in BUILTIN_PROFILES.items()}
    second = {name: hardware_record(again, p).hardware_id for name, p in BUILTIN_PROFILES.items()}
    assert first == second
    assert len(set(first.values())) == len(first)


def test_hardware_row_records_the_profile(machine, kb):
    all_cores = hardware_record(machine, BUILTIN_PROFILES["cpu-all"])
    int8 = hardware_record(machine, BUILTIN_PROFILES["cpu-1t-int8"])
    assert all_cores.threads == machine.cores == threads_used(BUILTIN_PROFILES["cpu-all"], machine)
    assert (int8.threads, int8.quantization, int8.kind) == (1, "int8", "cpu")
    assert hardware_record(machine, BUILTIN_PROFILES["cpu-1t"]).quantization is None
    assert kb.append("hardware", [all_cores, int8]).added == 2


def test_cuda_is_offered_only_where_cuda_exists(machine):
    cuda = BUILTIN_PROFILES["cuda"]
    without = dataclasses.replace(machine, providers=("CPUExecutionProvider",), torch_cuda=False)
    with_provider = dataclasses.replace(machine, providers=(CUDA_PROVIDER, "CPUExecutionProvider"))
    torch_only = dataclasses.replace(without, torch_cuda=True)
    assert not offered(cuda, without)
    assert offered(cuda, with_provider) and unusable_reason(cuda, with_provider) is None
    # torch sees a GPU but ONNX Runtime cannot use it: listed, with what to install.
    assert offered(cuda, torch_only)
    assert "onnxruntime-gpu" in unusable_reason(cuda, torch_only)
    assert hardware_record(with_provider, cuda).kind == "gpu"


def test_a_profile_asking_for_more_threads_than_cores_is_refused(machine):
    reason = unusable_reason(Profile(name="big", threads=machine.cores + 1), machine)
    assert reason and "usable cores" in reason


def _write(tmp_path, text: str):
    path = tmp_path / PROFILES_FILE
    path.write_text(text)
    return path


def test_profiles_file_is_read_and_validated(tmp_path):
    path = _write(tmp_path, """
# our targets
[profiles.edge-2t]
threads = 2
quantization = "int8"
batch_size = 16
memory_limit_mb = 256
description = "the edge box"

[profiles.server]
threads = "all"
min_measure_seconds = 0
max_measure_seconds = 2.5
""")
    profiles = read_profiles_file(path)
    edge = profiles["edge-2t"]
    assert (edge.threads, edge.quantization, edge.batch_size, edge.memory_limit_mb) == (2, "int8", 16, 256.0)
    assert edge.tolerance == 0.05 and edge.source == str(path)
    server = profiles["server"]
    assert (server.threads, server.tolerance, server.min_measure_seconds,
            server.max_measure_seconds) == (None, 1e-4, 0.0, 2.5)
    assert set(all_profiles(tmp_path)) == {*BUILTIN_PROFILES, "edge-2t", "server"}
    assert find_profile("edge-2t", tmp_path) == edge


@pytest.mark.parametrize("text, message", [
    ("[profiles.x\nthreads = 1", "is not valid TOML"),
    ("[profiles.x]\nthred = 1", "unknown setting 'thred'"),
    ("[profiles.x]\nthreads = 0", "threads must be a whole number >= 1"),
    ("[profiles.x]\nthreads = \"two\"", "threads must be"),
    ("[profiles.x]\nquantization = \"int4\"", "quantization must be \"none\" or \"int8\""),
    ("[profiles.x]\nbatch_size = 2.5", "batch_size must be"),
    ("[profiles.x]\nmemory_limit_mb = -1", "memory_limit_mb must be a number > 0"),
    ("[profiles.x]\nrepeats = 3", "repeats must be a whole number >= 10"),
    ("[profiles.x]\nmin_measure_seconds = -1", "min_measure_seconds must be a number >= 0"),
    ("[profiles.x]\nexecution_provider = \"cuda\"", "execution_provider must be"),
    ("[profiles.cpu-1t]\nthreads = 1", "is built in"),
    ("[profiles.\"Bad Name\"]\nthreads = 1", "a profile name is"),
    ("threads = 1", "unexpected top-level entry 'threads'"),
    ("profiles = 3", "'profiles' must be a table"),
])
def test_profile_file_errors_name_the_problem(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(KBError, match=message.replace("(", r"\(").replace("[", r"\[")) as raised:
        read_profiles_file(path)
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)


def test_unknown_profile_lists_the_known_ones(tmp_path):
    with pytest.raises(KBError, match="no hardware profile 'phone'.*cpu-1t, cpu-all"):
        find_profile("phone", tmp_path)


def test_append_profile_keeps_the_file_and_refuses_duplicates(tmp_path):
    path = _write(tmp_path, "# keep this comment\n[profiles.a]\nthreads = 1\n")
    append_profile(path, Profile(name="b", threads=None, quantization="int8",
                                 memory_limit_mb=64.5, description='quote " and ünïcode'))
    text = path.read_text()
    assert text.startswith("# keep this comment\n")
    b = read_profiles_file(path)["b"]
    assert (b.threads, b.quantization, b.memory_limit_mb, b.description) == (
        None, "int8", 64.5, 'quote " and ünïcode')
    with pytest.raises(KBError, match="already exists"):
        append_profile(path, Profile(name="a"))
    with pytest.raises(KBError, match="built in"):
        append_profile(path, Profile(name="cpu-all"))


def test_append_profile_creates_the_file(tmp_path):
    path = tmp_path / PROFILES_FILE
    append_profile(path, Profile(name="solo", batch_size=8))
    assert read_profiles_file(path)["solo"].batch_size == 8


def test_a_dotted_name_is_refused_with_the_characters_allowed():
    from search.profiles import profile_from_settings

    with pytest.raises(KBError, match=r"a profile name is .*digits, '_' or '-'") as raised:
        profile_from_settings("edge.v2", {"threads": 1}, "hardware.toml")
    assert "'.'" not in str(raised.value)


@pytest.mark.parametrize("profile", [
    Profile(name="edge.v2"),  # TOML would read [profiles.edge.v2] as nested tables
    Profile(name="few", repeats=3),  # a value the file may not hold
])
def test_a_profile_that_would_not_read_back_leaves_the_file_unchanged(tmp_path, profile):
    path = _write(tmp_path, "[profiles.a]\nthreads = 1\n")
    before = path.read_bytes()
    with pytest.raises(KBError, match="the file is unchanged"):
        append_profile(path, profile)
    assert path.read_bytes() == before
    assert list(read_profiles_file(path)) == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [PROFILES_FILE]  # no temporary left

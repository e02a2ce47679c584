"""Tests of loadtest/cpu_split.py on perf-script text shaped like `perf script -F tid,time,event,ip,trace`
of a `perf record -C CPU -e sched:sched_switch -c 1 -e cpu-clock/period=N/` run (run by scripts/test)."""
import io
import json
import pathlib
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import cpu_split  # noqa: E402

K = "ffffffff82249848"  # a kernel address
U = "55d0c0de1234"  # a user-space address


def switch(time, prev_comm, prev_pid, next_comm, next_pid):
    return (f"{prev_pid:>6} {time:.6f}: sched:sched_switch: prev_comm={prev_comm} prev_pid={prev_pid} "
            f"prev_prio=120 prev_state=R ==> next_comm={next_comm} next_pid={next_pid} next_prio=120 {K}")


def sample(time, tid, ip):
    return f"{tid:>6} {time:.6f}:          cpu-clock/period=500000/:  {ip}"


def test_time_between_switches_belongs_to_the_thread_switched_out():
    lines = [
        sample(0.5, 7, U),  # before the first switch: no stretch of it is known
        switch(1.0, "proxy", 7, "mock worker", 9),
        sample(1.1, 9, U),
        sample(1.2, 9, K),
        sample(1.3, 9, K),
        switch(1.4, "mock worker", 9, "proxy", 7),
        sample(1.5, 7, U),
        switch(2.0, "proxy", 7, "swapper/1", 0),
        switch(2.5, "swapper/1", 0, "kworker/1:2-mm_", 44),
        switch(2.6, "kworker/1:2-mm_", 44, "proxy", 8),
        switch(3.6, "proxy", 8, "swapper/1", 0),
        sample(3.7, 0, K),  # after the last switch: still counted as a sample of idle
    ]
    window, seconds, samples, user = cpu_split.split(lines, {7: "target", 8: "target", 9: "mock"})
    assert abs(window - 2.6) < 1e-9
    assert abs(seconds["mock"] - 0.4) < 1e-9
    assert abs(seconds["target"] - 1.6) < 1e-9  # 0.6 by thread 7, 1.0 by thread 8
    assert abs(seconds["idle"] - 0.5) < 1e-9
    assert abs(seconds["other"] - 0.1) < 1e-9  # the kernel worker
    assert samples == {"target": 2, "mock": 3, "idle": 1}
    assert user == {"target": 2, "mock": 1}


def test_command_names_with_spaces_and_arrows_in_text_do_not_confuse_the_pids():
    lines = [
        switch(1.0, "a b c", 3, "x y", 4),
        switch(2.0, "x y", 4, "a b c", 3),
        switch(2.5, "a b c", 3, "x y", 4),
    ]
    _, seconds, _, _ = cpu_split.split(lines, {3: "target", 4: "mock"})
    assert abs(seconds["mock"] - 1.0) < 1e-9
    assert abs(seconds["target"] - 0.5) < 1e-9


def test_command_line_prints_every_group_and_the_proc_figures():
    text = "\n".join([
        switch(1.0, "proxy", 7, "mock", 9),
        switch(1.25, "mock", 9, "proxy", 7),
        switch(2.0, "proxy", 7, "swapper/1", 0),
    ]) + "\n"
    script = pathlib.Path(__file__).parent / "cpu_split.py"
    out = subprocess.run([sys.executable, str(script), "--proc", "1 2 3 4 5 6 7 8", "--group", "target=7 70",
                          "--group", "mock=9"], input=text, capture_output=True, text=True, check=True).stdout
    report = json.load(io.StringIO(out))
    assert report["proc"] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    assert set(report["groups"]) == {"target", "mock", "other", "idle"}
    assert abs(report["groups"]["mock"]["cpu_s"] - 0.25) < 1e-9
    assert abs(report["groups"]["target"]["cpu_s"] - 0.75) < 1e-9
    assert report["groups"]["idle"]["cpu_s"] == 0.0


def test_ceilings_are_the_ratio_of_whole_cpu_times_and_the_same_without_our_user_time():
    # Per request: proxy 20 µs (5 of it user) + mock 10 + others 0 against nginx 24 + 12 + 0.
    now, without_user = cpu_split.ceilings((20.0, 5.0, 10.0, 0.0), (24.0, 4.0, 12.0, 0.0))
    assert abs(now - 36 / 30) < 1e-9
    assert abs(without_user - 36 / 25) < 1e-9
    # Unknown "others" count as none.
    assert cpu_split.ceilings((20.0, 5.0, 10.0, None), (24.0, 4.0, 12.0, None))[0] == now

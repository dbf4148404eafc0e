"""The programs keep what a normal exit keeps (the exit code, flushed output, atexit handlers, the work of non-daemon
threads) and set numpy's BLAS threads before numpy loads."""
import os
import subprocess
import sys
import textwrap


def run(body: str, tmp_path) -> subprocess.CompletedProcess:
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(body))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path)


def test_exit_code_output_handlers_and_threads_survive(tmp_path):
    res = run("""
        import atexit, sys, threading, time
        from pathlib import Path
        from serving.program import run_program

        def main():
            atexit.register(lambda: Path("atexit.txt").write_text("ran"))
            def late():
                time.sleep(0.3)
                Path("thread.txt").write_text("done")
            threading.Thread(target=late).start()
            sys.stdout.write("no newline at the end")  # buffered: only the final flush writes it
            return 3

        run_program(main)
        """, tmp_path)
    assert res.returncode == 3, res.stderr
    assert res.stdout == "no newline at the end"
    assert (tmp_path / "atexit.txt").read_text() == "ran"
    assert (tmp_path / "thread.txt").read_text() == "done"


def test_system_exit_codes_and_messages(tmp_path):
    for exit_with, code, err in (("None", 0, ""), ("2", 2, ""), ("'bad input'", 1, "bad input\n")):
        res = run(f"""
            import sys
            from serving.program import run_program
            run_program(lambda: sys.exit({exit_with}))
            """, tmp_path)
        assert (res.returncode, res.stderr) == (code, err)


def test_uncaught_exception_keeps_pythons_traceback_and_status(tmp_path):
    res = run("""
        from serving.program import run_program
        def main():
            raise RuntimeError("boom")
        run_program(main)
        """, tmp_path)
    assert res.returncode == 1 and "RuntimeError: boom" in res.stderr


def test_programs_set_blas_threads_before_numpy_loads(tmp_path):
    """The entry modules must not load numpy: OPENBLAS_NUM_THREADS is read once, when numpy's OpenBLAS loads."""
    for user_value, expected in ((None, "1"), ("2", "2")):
        env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
        if user_value:
            env["OPENBLAS_NUM_THREADS"] = user_value
        code = ("import sys, os\n"
                "import serving.program, training.program\n"
                "assert 'numpy' not in sys.modules, 'an entry module imported numpy'\n"
                "serving.program.start_program()\n"
                "print(os.environ['OPENBLAS_NUM_THREADS'])\n")
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
        assert (res.returncode, res.stdout.strip()) == (0, expected), res.stderr

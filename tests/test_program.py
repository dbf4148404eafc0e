"""The one command line (serving.cli.main, `bindcnn`, `python -m serving` / `python -m training`): every command
listed, training commands added only where installed (and a message naming the extra where not), exit codes defined
once, and a closed stdout pipe (`| head`) ending the program quietly."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVING_COMMANDS = ["score", "scan", "variants", "mutagenesis", "tune", "serve"]
# The predictor image: TensorFlow cannot be imported (sys.modules[name] = None is how Python blocks an import).
NO_TENSORFLOW = "import sys; sys.modules['tensorflow'] = None\n"


def python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


def test_help_lists_every_command_in_both_spellings():
    from serving.cli.parsers import TRAINING_COMMANDS

    for module in ("serving", "training"):
        res = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        listed = {line.split()[0] for line in res.stdout.splitlines() if line.startswith("    ") and line.split()}
        assert set(SERVING_COMMANDS) | set(TRAINING_COMMANDS) <= listed, (module, listed)


def test_training_adds_exactly_the_commands_serving_names():
    """serving/cli/parsers.py's TRAINING_COMMANDS (what the predictor image lists) is what training/cli.py adds."""
    import argparse

    from serving.cli.parsers import TRAINING_COMMANDS
    from training.cli import add_commands

    sub = argparse.ArgumentParser().add_subparsers()
    add_commands(sub)
    assert tuple(sub.choices) == TRAINING_COMMANDS


def test_predictor_image_names_the_extra_for_a_training_command():
    """Without TensorFlow: `bindcnn train ...` (and its --help) says which extra to install and exits 2, without
    importing training; --help still lists every command; the serving commands work."""
    run_train = NO_TENSORFLOW + ("from serving.cli import main\ncode = main(sys.argv[1:])\n"
                                 "assert 'training' not in sys.modules, 'training was imported'\nsys.exit(code)")
    for argv in (["train", "--name", "x"], ["judge", "--help"]):
        res = python(run_train, *argv)
        assert res.returncode == 2, res.stderr
        assert "pip install 'bindcnn[train]'" in res.stderr and f"bindcnn {argv[0]}" in res.stderr
    res = python(NO_TENSORFLOW + "from serving.cli import main\nsys.exit(main(['--help']))")
    assert res.returncode == 0 and "train " in res.stdout and "needs pip install 'bindcnn[train]'" in res.stdout
    res = python(NO_TENSORFLOW + "from serving.cli import main\nsys.exit(main(['score', '--help']))")
    assert res.returncode == 0 and "usage:" in res.stdout


def test_exit_codes_are_defined_once():
    """Only serving/cli/parsers.py assigns EXIT_* names; everyone else imports them."""
    owners = set()
    for path in sorted([*ROOT.glob("serving/**/*.py"), *ROOT.glob("training/**/*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign):
                names = [n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)]
                if any(n.startswith("EXIT_") for n in names):
                    owners.add(path.relative_to(ROOT).as_posix())
    assert owners == {"serving/cli/parsers.py"}
    from serving.cli import parsers
    from training import cli, commands

    assert (cli.EXIT_BAD_INPUT, commands.EXIT_FAILED) == (parsers.EXIT_USAGE, parsers.EXIT_FAILED)


def test_a_closed_stdout_ends_quietly(trained, tmp_path):
    """`bindcnn score big.fa | head -1`: once the reader is gone the rest is dropped, no traceback, exit 141."""
    fa = tmp_path / "big.fa"
    fa.write_text("".join(f">record_{i}\n{'ACGTTGCA' * 25}\n" for i in range(30000)))
    proc = subprocess.Popen([sys.executable, "-m", "serving", "score", str(fa), "--local", "--model",
                             str(trained["dir"]), "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().startswith(b"id\t")
    proc.stdout.close()  # what head does after its line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 141, err
    assert "Traceback" not in err and "Exception ignored" not in err, err

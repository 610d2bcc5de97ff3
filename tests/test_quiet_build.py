"""The build log a user watches (issue 22): one line per executed page, no configuration dumps, warnings and
errors as they are, no line over 200 characters."""

from pathlib import Path

from asgt_lib.report import book

SOURCE = Path("/src")


def run(lines: list[str]) -> list[str]:
    done: list[str] = []
    shown = [book._progress(line + "\n", SOURCE, done, 9) for line in lines]
    return [s for s in shown if s]


def test_noise_is_dropped_and_each_executed_page_is_one_line():
    log = [
        "Running Jupyter-Book v1.0.4.post1",
        "Running Sphinx v7.4.7",
        "myst v3.0.1: MdParserConfig(commonmark_only=False, gfm_only=False, " + "x" * 600 + ")",
        "myst-nb v1.4.0: NbParserConfig(custom_formats={}, metadata_key='mystnb', " + "y" * 600 + ")",
        "\x1b[01mreading sources... \x1b[39;49;00m[ 20%] \x1b[35mbook/claims\x1b[39;49;00m",
        "\x1b[01mmyst v3.0.1:\x1b[39;49;00m MdParserConfig(commonmark_only=False, " + "z" * 300 + ")",
        "/src/book/runs/reference/mnist-st-seed0.ipynb: Excluded from execution by pattern: 'runs/*/*.ipynb' [mystnb]",
        "Using jupyter-cache at: /src/_build/.jupyter_cache",
        "copying images... [ 82%] _build/jupyter_execute/fce587c5e460b55ce06540dc61283456af0b50a4.png",
        "/src/book/claims.ipynb: Executing notebook using local CWD [mystnb]",
        "/src/book/claims.ipynb: Executed notebook in 12.34 seconds [mystnb]",
        "writing output... [ 50%] book/claims",
        "Kernel is running over TCP without encryption",
    ]
    assert run(log) == ["  page 1/9: book/claims executed in 12.3 s"]


def test_warnings_and_tracebacks_pass_and_long_lines_are_wrapped_not_cut():
    warning = "/src/book/field.ipynb:5: WARNING: " + "a very long message " * 20
    shown = run([warning, "Traceback (most recent call last):", "  File \"x.py\", line 1"])
    assert shown[1:] == ["Traceback (most recent call last):", "  File \"x.py\", line 1"]
    lines = shown[0].split("\n")
    assert all(len(line) <= book.MAX_LINE for line in lines) and len(lines) == 3  # 435 characters
    assert "".join(line.removeprefix("    ") for line in lines).replace(" ", "") == warning.replace(" ", "")

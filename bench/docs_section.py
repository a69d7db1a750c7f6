"""Rewrite one marked section of docs/benchmarks.md (each benchmark script owns one section)."""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
IMG = DOC.parent / "img"


def write_section(name: str, body: str) -> None:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    section = f"{start}\n{body.strip()}\n{end}"
    if start in text:
        text = text[: text.index(start)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    DOC.write_text(text)


def save_plot(fig, name: str) -> str:
    """Save a matplotlib figure under docs/img/ and return the Markdown that shows it."""
    import matplotlib.pyplot as plt

    IMG.mkdir(exist_ok=True)
    fig.savefig(IMG / f"{name}.png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return f"![{name}](img/{name}.png)"

"""Replaces one marked section of docs/benchmarks.md (shared by the bench scripts)."""


def write_section(doc, block, start_mark, end_mark):
    """Puts `block` (which starts with `start_mark` and ends with `end_mark`) in place of the
    section between those markers in `doc`, or appends it when the markers are missing."""
    try:
        with open(doc) as f:
            text = f.read()
    except FileNotFoundError:
        text = "# Benchmarks\n"
    start, end = text.find(start_mark), text.find(end_mark)
    if start != -1 and end > start:
        rest = text[end + len(end_mark) :].lstrip("\n")
        text = text[:start] + block + ("\n" + rest if rest else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    with open(doc, "w") as f:
        f.write(text)

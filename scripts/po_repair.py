"""Repair the .po catalogues after a merge: `*.po merge=union` (.gitattributes) keeps both sides'
lines, which can glue two entries together, drop a `msgstr ""`, leave a dangling msgstr or keep a
message twice. This puts entries apart, restores missing msgstr, drops dangling ones and keeps the
first of duplicates (a translation wins over an empty msgstr); then compile with msgfmt -c.

    python scripts/po_repair.py locale/*/LC_MESSAGES/django.po
"""

import re
import sys


def _entries_apart(lines):
    out, in_str = [], False
    for line in lines:
        text = line.strip()
        starts = text.startswith(("msgctxt ", "#")) or (
            text.startswith("msgid ") and not (out and out[-1].strip().startswith("msgctxt")))
        if starts and in_str:
            out.append("")
        if text.startswith("msgstr"):
            in_str = True
        elif not (text.startswith('"') and in_str):
            in_str = False
        out.append(line)
    return out


def _msgstr_restored(lines):
    out, state, i = [], None, 0
    while i < len(lines):
        line, text = lines[i], lines[i].strip()
        if text.startswith(("msgid ", "msgid_plural ")):
            if state == "id" and text.startswith("msgid "):
                out.append('msgstr ""')
            state = "id"
            out.append(line)
        elif text.startswith("msgstr"):
            if state is None:  # dangling: drop it and its continuation lines
                i += 1
                while i < len(lines) and lines[i].startswith('"'):
                    i += 1
                continue
            state = "str"
            out.append(line)
        elif text.startswith('"'):
            out.append(line)
        else:
            if state == "id":
                out.append('msgstr[0] ""' if any("msgid_plural" in x for x in out[-4:]) else 'msgstr ""')
            if text == "" or text.startswith("#"):
                state = None
            out.append(line)
        i += 1
    return out


def _key(block):
    def joined(match):
        return "".join(re.findall(r'"(.*)"', match.group(1))) if match else None

    context = joined(re.search(r'^msgctxt ((?:".*"\n?)+)', block, re.M))
    msgid = joined(re.search(r'^msgid ((?:".*"\n?)+)', block, re.M))
    msgstr = joined(re.search(r'^msgstr(?:\[0\])? ((?:".*"\n?)+)', block, re.M))
    return (context, msgid), msgstr


def _deduplicated(text):
    seen, out = {}, []
    for block in re.split(r"\n\s*\n", text):
        (context, msgid), msgstr = _key(block + "\n")
        if msgid is None or (msgid == "" and context is None):
            out.append(block)
            continue
        if (context, msgid) in seen:
            first = seen[(context, msgid)]
            if not _key(out[first] + "\n")[1] and msgstr:
                out[first] = block
            continue
        seen[(context, msgid)] = len(out)
        out.append(block)
    return "\n\n".join(out).rstrip("\n") + "\n"


def main(paths):
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().split("\n")
        text = "\n".join(_msgstr_restored(_entries_apart(lines)))
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(_deduplicated(text))


if __name__ == "__main__":
    main(sys.argv[1:])

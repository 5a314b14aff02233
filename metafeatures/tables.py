"""The README's tables, generated from the mapping table: ``python -m metafeatures.tables``."""

from __future__ import annotations

from metafeatures.names import ALIASES, CONVERSIONS, FEATURES, GROUPS


def markdown_tables() -> dict[str, str]:
    """The catalogue per group, auto-sklearn's names, and the pymfe parity table."""
    rows = {}
    for group in GROUPS:
        lines = [f"**{group}**", "", "| name | what | OpenML |", "|---|---|---|"]
        for f in FEATURES:
            if f.group == group:
                lines.append(f"| `{f.name}` | {f.description} | {'—' if f.openml is None else f.openml} |")
        rows[group] = "\n".join(lines)
    askl = ["| auto-sklearn name | metakb feature | conversion | exact |", "|---|---|---|---|"]
    for a in ALIASES:
        if a.source == "autosklearn":
            target = f"`{a.feature}`" if a.feature else "— (not convertible)"
            how = CONVERSIONS[a.convert][1] if a.feature else ""
            askl.append(f"| `{a.name}` | {target} | {how} | {'yes' if a.exact else 'no: ' + a.note} |")
    parity = ["| pymfe 0.4.4 feature | metakb feature | conversion |", "|---|---|---|"]
    for a in ALIASES:
        if a.source == "pymfe" and a.feature and a.exact:
            parity.append(f"| `{a.name}` | `{a.feature}` | {CONVERSIONS[a.convert][1]} |")
    rows["autosklearn"] = "\n".join(askl)
    rows["pymfe"] = "\n".join(parity)
    return rows


if __name__ == "__main__":
    for title, table in markdown_tables().items():
        print(f"<!-- {title} -->\n{table}\n")

"""Plain-text reports about the data: what ``streamreg inspect`` prints, and the fit
report's lines on what every column of the data was in a fit."""

from __future__ import annotations

from .progress import human_bytes


def columns_lines(roles: dict | None) -> list[str]:
    """The report's lines about the data's columns (``model.columns_``): the categories, the
    absorbed and cluster columns, and every column skipped, with why."""
    if not roles:
        return []
    by_role: dict[str, list[str]] = {}
    for name, role in roles.items():
        by_role.setdefault(role["role"], []).append(name)
    lines = []
    if by_role.get("category"):
        described = ", ".join(f"{n} ({roles[n]['why']})" for n in by_role["category"])
        lines.append(f"categories: {described}")
    dated = [n for n in by_role.get("feature", []) if " as " in roles[n]["why"]]
    if dated:
        lines.append("read as numbers: " + ", ".join(f"{n} ({roles[n]['why']})" for n in dated))
    for role in ("absorbed", "cluster"):
        if by_role.get(role):
            lines.append(f"{role}: {', '.join(by_role[role])}")
    reasons: dict[str, list[str]] = {}
    for name in by_role.get("skipped", []):
        reasons.setdefault(roles[name]["why"], []).append(name)
    if reasons:
        lines.append(
            "skipped: " + "; ".join(f"{', '.join(names)} ({why})" for why, names in reasons.items())
        )
    return lines


def inspect_report(info: dict) -> str:
    files = info["files"]
    lines = [
        f"{len(files)} file{'s' if len(files) != 1 else ''}, {info['rows']:,} rows, "
        f"{human_bytes(info['bytes'])}"
    ]
    if not info["columns"]:
        return "\n".join([*lines, "  no columns: the files hold no data a fit could use"])
    width = max(len(c["name"]) for c in info["columns"])
    lines.append(f"  {'column':<{width}}  {'type':<14} {'numeric':<8} {'nulls':>10}")
    for col in info["columns"]:
        nulls = "?" if col["nulls"] is None else f"{col['nulls']:,}"
        kind = col["type"] + (" (partition)" if col["partition"] else "")
        lines.append(
            f"  {col['name']:<{width}}  {kind:<14} {'yes' if col['numeric'] else 'no':<8} "
            f"{nulls:>10}"
        )
    return "\n".join(lines)

"""messaging/outbox/states.py is the only code that changes a message's or a recipient's status.

Checked on the source: every module of the app except outbox/states.py (and its migrations) is
parsed, and any write of a `MessageStatus` or `RecipientStatus` value is reported: an assignment
to a `.status` attribute, or a `status=` keyword to a call that writes rows (`update`, `create`, …)
or builds a message or recipient. Queries such as `filter(status=…)` are reads and pass.
"""

from __future__ import annotations

import ast
from pathlib import Path

import messaging

APP = Path(messaging.__file__).parent
STATUS_ENUMS = {"MessageStatus", "RecipientStatus"}
WRITING_CALLS = {
    "update",
    "create",
    "bulk_create",
    "bulk_update",
    "get_or_create",
    "update_or_create",
    "OutboundMessage",
    "Recipient",
}


def _names_a_status(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and n.id in STATUS_ENUMS for n in ast.walk(node))


def _called_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def status_writes(source: str) -> list[int]:
    """Line numbers in `source` that write a message or recipient status."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            sets_status = any(isinstance(t, ast.Attribute) and t.attr == "status" for t in targets)
            if sets_status and node.value is not None and _names_a_status(node.value):
                lines.append(node.lineno)
        elif isinstance(node, ast.Call) and _called_name(node) in WRITING_CALLS:
            for keyword in node.keywords:
                if keyword.arg == "status" and _names_a_status(keyword.value):
                    lines.append(node.lineno)
    return lines


def app_modules() -> list[Path]:
    return [
        path
        for path in sorted(APP.rglob("*.py"))
        if path != APP / "outbox" / "states.py" and "migrations" not in path.parts
    ]


def test_the_check_finds_each_kind_of_status_write():
    source = (
        "message.status = MessageStatus.SENT\n"
        "OutboundMessage.objects.filter(pk=1).update(status=MessageStatus.FAILED)\n"
        "Recipient.objects.create(message=m, status=RecipientStatus.QUEUED)\n"
        "OutboundMessage(team=t, status=MessageStatus.QUEUED)\n"
        "OutboundMessage.objects.filter(status=MessageStatus.SENT).count()\n"
        "connection.status = ConnectionStatus.LINKED\n"
    )
    assert status_writes(source) == [1, 2, 3, 4]


def test_no_module_but_outbox_changes_a_status():
    modules = app_modules()
    assert APP / "tracking" / "polling.py" in modules and (
        APP / "outbox" / "views" / "messages.py" in modules
    )
    found = {
        str(path.relative_to(APP)): lines
        for path in modules
        if (lines := status_writes(path.read_text(encoding="utf-8")))
    }
    assert found == {}, f"status written outside messaging/outbox/states.py: {found}"

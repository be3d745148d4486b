"""What a migration operation does to the data, from a plain description of it (no Django).

:mod:`backstage.remote.managesteps` describes each operation of a migration plan as a dict
(its class name, the field it adds or the fields before and after it alters, whether it can
be reversed) and classifies it here, on the host, before ``migrate`` runs; the text of this
module is joined into that program (see :func:`backstage.remote.standalone`). Pure and
standard library only, so the workstation's tests check it without Django.

- **additive**: the old release keeps working and nothing is lost (a nullable field or one
  with a default, a new model, an index, a constraint, model options, a widened field).
- **destructive**: data or a column the old release reads goes away or changes shape (a
  removed or renamed field or model, a field narrowed or made NOT NULL without a default, a
  changed column type, a NOT NULL field added without a default, an operation Backstage
  does not know).
- **irreversible**: it cannot be migrated back (``RunPython``/``RunSQL`` without a reverse,
  any operation that says it is not reversible). Code with a reverse counts as additive:
  Backstage cannot read what it does, but it can undo it.
"""

ADDITIVE, DESTRUCTIVE, IRREVERSIBLE = "additive", "destructive", "irreversible"
KINDS = (ADDITIVE, DESTRUCTIVE, IRREVERSIBLE)  # in order of concern

SAFE = frozenset({
    "CreateModel", "AddIndex", "AddConstraint", "AddIndexConcurrently", "RemoveIndex",
    "RemoveIndexConcurrently", "RemoveConstraint", "RenameIndex", "AlterModelOptions",
    "AlterModelManagers", "AlterUniqueTogether", "AlterIndexTogether", "AlterModelTableComment",
    "CreateExtension", "BtreeGistExtension", "HStoreExtension", "TrigramExtension",
    "UnaccentExtension", "CITextExtension", "CryptoExtension", "CreateCollation",
})
REMOVING = {
    "RemoveField": "removes a column",
    "DeleteModel": "drops a table",
    "RenameField": "renames a column the old release reads",
    "RenameModel": "renames a table the old release reads",
    "AlterModelTable": "renames a table the old release reads",
    "AlterOrderWithRespectTo": "adds or drops the _order column",
}
CODE = ("RunPython", "RunSQL")
NARROWING = ("max_length", "max_digits", "decimal_places")


def classify(operation: dict) -> tuple[str, str]:
    """The kind of one described operation and why, in a few words."""
    name = operation.get("operation", "?")
    if operation.get("reversible") is False:
        return IRREVERSIBLE, "has no reverse" if name in CODE else "cannot be reversed"
    if name in CODE:
        return ADDITIVE, "code with a reverse"
    if name == "SeparateDatabaseAndState":
        parts = [classify(part) for part in operation.get("database_operations", [])]
        return max(parts, key=lambda kind: KINDS.index(kind[0]),
                   default=(ADDITIVE, "changes no table"))
    if name in SAFE:
        return ADDITIVE, "keeps every column"
    if name in REMOVING:
        return DESTRUCTIVE, REMOVING[name]
    if name == "AddField":
        return added(operation.get("field", {}))
    if name == "AlterField":
        return altered(operation.get("old_field") or {}, operation.get("field", {}))
    return DESTRUCTIVE, "an operation Backstage does not know"


def added(field: dict) -> tuple[str, str]:
    if field.get("null") or field.get("default") or field.get("many_to_many"):
        return ADDITIVE, "a nullable column, or one with a default"
    return DESTRUCTIVE, "a NOT NULL column without a default (the old release cannot insert)"


def altered(old: dict, new: dict) -> tuple[str, str]:
    """An altered field narrows when its column changes type or name, shrinks, or becomes
    NOT NULL without a default to fill the rows that have none."""
    if old.get("type") != new.get("type"):
        return DESTRUCTIVE, f"changes the column's type ({old.get('type')} to {new.get('type')})"
    if old.get("column") != new.get("column"):
        return DESTRUCTIVE, "renames a column the old release reads"
    if old.get("null") and not new.get("null") and not new.get("default"):
        return DESTRUCTIVE, "makes a column NOT NULL without a default"
    for key in NARROWING:
        before, after = old.get(key), new.get(key)
        if before is not None and after is not None and after < before:
            return DESTRUCTIVE, f"narrows {key} from {before} to {after}"
    return ADDITIVE, "widens or keeps the column"


def worst(kinds) -> str:
    """The most concerning of some kinds (additive when there are none)."""
    return max(kinds, key=KINDS.index, default=ADDITIVE)

"""Where a TA's decisions live and are made: the gradebook (SQLite: runs, auto marks, overrides, audit
log), the terminal review screen, the flags spreadsheet, and answer groups marked in one go.

Nothing a TA entered is ever lost or silently overwritten (see `gradebook`). Imports exam, embedding
and scoring only."""

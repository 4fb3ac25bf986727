/* schema.h — the database schema as numbered migrations kept in the binary. */
#ifndef ST_SCHEMA_H
#define ST_SCHEMA_H

#include <sqlite3.h>

/** Open `path` with the project's pragmas (WAL, foreign keys, busy timeout) and
 *  apply pending migrations. `readonly` opens an existing file without writing.
 *  Returns 0 or ST_EIO (with a log line naming the file and the cause). */
int schema_open(const char *path, int readonly, sqlite3 **out);

/** The schema version this binary writes. */
int schema_version(void);

/** Prepare a statement kept for the connection's life (SQLITE_PREPARE_PERSISTENT); a
 *  failure is logged with SQLite's reason and the start of the SQL. 0 or ST_EIO. */
int schema_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st);

/** Run a prepared write (or one-row read whose row is not wanted) and reset it for the next
 *  use, bindings cleared; a failure is logged with the database and SQLite's reason. 0 or
 *  ST_EIO. */
int schema_step(sqlite3_stmt *st);

#endif

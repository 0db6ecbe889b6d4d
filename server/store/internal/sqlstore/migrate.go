package sqlstore

import (
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// Migration is one embedded SQL file of a driver's schema.
type Migration struct {
	Version int64
	Name    string // the file's name
	SQL     string
}

// LoadMigrations reads the migrations in dir of fsys, in version order. A
// file is named <version>_<what>.sql; versions increase with the name.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	files, err := fs.ReadDir(fsys, dir) // sorted by name
	if err != nil {
		return nil, err
	}
	ms := make([]Migration, 0, len(files))
	for _, f := range files {
		prefix, _, _ := strings.Cut(f.Name(), "_")
		v, err := strconv.ParseInt(prefix, 10, 64)
		if err != nil || v <= 0 || (len(ms) > 0 && v <= ms[len(ms)-1].Version) {
			return nil, fmt.Errorf("migration %s: name must start with a positive version above the previous one", f.Name())
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, f.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: f.Name(), SQL: string(b)})
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("no migrations in %s", dir)
	}
	return ms, nil
}

// Pending returns the migrations of ms (in version order) that a database
// at schema version current has not applied. A database newer than the
// last of ms is an error: a binary must not write to a schema it does not
// know, e.g. after a rollback.
func Pending(ms []Migration, current int64) ([]Migration, error) {
	if latest := ms[len(ms)-1].Version; current > latest {
		return nil, fmt.Errorf("the database is at schema version %d, newer than this binary's %d", current, latest)
	}
	for i, m := range ms {
		if m.Version > current {
			return ms[i:], nil
		}
	}
	return nil, nil
}

// CheckCurrent reports whether a database at schema version current is
// exactly what this binary's migrations (in fsys/dir) make: Ping uses it, so a replica
// whose shared database was migrated past it (or not yet migrated) stops
// reporting ready instead of misreading the tables.
func CheckCurrent(fsys fs.FS, dir string, current int64) error {
	ms, err := LoadMigrations(fsys, dir)
	if err != nil {
		return err
	}
	pending, err := Pending(ms, current)
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		return fmt.Errorf("the database is at schema version %d, this binary needs %d: restart it to apply the migrations", current, ms[len(ms)-1].Version)
	}
	return nil
}

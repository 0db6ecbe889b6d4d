// Package buildinfo says which build of accounthealth is running: the
// module version, the commit it was built from and the Go version, as the
// Go toolchain stamps them into the binary.
package buildinfo

import (
	"runtime/debug"
	"sync"
)

// Info describes the running build.
type Info struct {
	// Version is the module's version: a tag for `go install
	// ...@v1.2.3`, "(devel)" for a build from a checkout.
	Version string
	// Revision is the commit, with "+dirty" when the checkout had changes;
	// "unknown" when the build did not record it (go run, tests).
	Revision string
	// Time is the commit's time, "" when unknown.
	Time      string
	GoVersion string
}

// Get reads the build's information once.
var Get = sync.OnceValue(func() Info {
	info := Info{Version: "(devel)", Revision: "unknown"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	info.GoVersion = bi.GoVersion
	if bi.Main.Version != "" {
		info.Version = bi.Main.Version
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && info.Revision != "unknown" {
		info.Revision += "+dirty"
	}
	return info
})

// String is the one line `accounthealth version` prints.
func (i Info) String() string {
	s := "accounthealth " + i.Version + " (commit " + i.Revision
	if i.Time != "" {
		s += ", " + i.Time
	}
	return s + ", " + i.GoVersion + ")"
}

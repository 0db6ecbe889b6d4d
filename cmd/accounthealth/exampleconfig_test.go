package main

import (
	"flag"
	"io"
	"os"
	"regexp"
	"testing"

	"github.com/accounthealth/accounthealth/server/service"
)

// docs/accounthealth.conf lists every setting of serve with its default,
// and nothing else.
func TestExampleConfigListsEverySetting(t *testing.T) {
	b, err := os.ReadFile("../../docs/accounthealth.conf")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^# ([a-z0-9-]+) =(?: (.*))?$`).FindAllStringSubmatch(string(b), -1) {
		listed[m[1]] = m[2]
	}
	cfg := service.DefaultConfig()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	serveFlags(fs, &cfg)
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" {
			return
		}
		def, ok := listed[f.Name]
		switch {
		case !ok:
			t.Errorf("%s is not in docs/accounthealth.conf", f.Name)
		case def != f.DefValue:
			t.Errorf("%s: the file gives the default %q, serve has %q", f.Name, def, f.DefValue)
		}
		delete(listed, f.Name)
	})
	for name := range listed {
		t.Errorf("docs/accounthealth.conf lists %s, which serve does not have", name)
	}
}

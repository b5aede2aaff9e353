package allocate

import (
	"flag"
	"os"
	"testing"
)

// TestMain runs ten times rapid's default number of property checks: they
// cost well under a second here, and a rare interleaving is exactly what
// they exist to find. An explicit -rapid.checks or RAPID_CHECKS wins, and
// -short keeps the default.
func TestMain(m *testing.M) {
	flag.Parse()
	explicit := os.Getenv("RAPID_CHECKS") != ""
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "rapid.checks" })
	if !explicit && !testing.Short() {
		if err := flag.Set("rapid.checks", "1000"); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}

package allocate

import (
	"flag"
	"os"
	"testing"
)

// TestMain runs ten times rapid's default number of property checks, with
// sequences three times longer (the tree needs a few hundred steps to reach
// every rebalancing case): together they cost a second or two here, and a
// rare interleaving is exactly what they exist to find. Explicit
// -rapid.checks/-rapid.steps (or RAPID_CHECKS/RAPID_STEPS) win, and -short
// keeps rapid's defaults.
func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Short() {
		setUnlessExplicit("rapid.checks", "RAPID_CHECKS", "1000")
		setUnlessExplicit("rapid.steps", "RAPID_STEPS", "100")
	}
	os.Exit(m.Run())
}

func setUnlessExplicit(name, env, value string) {
	explicit := os.Getenv(env) != ""
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == name })
	if !explicit {
		if err := flag.Set(name, value); err != nil {
			panic(err)
		}
	}
}

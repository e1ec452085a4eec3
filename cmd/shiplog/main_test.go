package main

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"shiplog": main})
}

// TestScripts runs the command end to end from testdata/script/*.txt.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(e *testscript.Env) error {
			e.Setenv("HOME", e.WorkDir)
			if ci := os.Getenv("CI"); ci != "" {
				e.Setenv("CI", ci)
			}
			return nil
		},
	})
}

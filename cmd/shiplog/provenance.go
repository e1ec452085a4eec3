package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/shiplog/shiplog/evidence/provenance"
	"github.com/spf13/cobra"
)

// provenanceFlags are repo add's declaration of where a target comes from
// (docs/spec/provenance.md).
type provenanceFlags struct {
	source, sha256, revision, build, toolchain, output string
}

func (f *provenanceFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.StringVar(&f.source, "source", "", "where the source is: an https:// or file:/// archive (.tar.gz, .tgz, .tar, .zip) or a git+https:// or git+file:/// repository (docs/spec/provenance.md)")
	fl.StringVar(&f.sha256, "source-sha256", "", "SHA-256 (hex) of the source archive (required for archives)")
	fl.StringVar(&f.revision, "revision", "", "git: the full commit id; archives: an optional label such as v1.4.0")
	fl.StringVar(&f.build, "build", "", "the command that builds the target, run by /bin/sh -c in the source root")
	fl.StringVar(&f.toolchain, "toolchain", "", "the toolchain the build expects, e.g. go1.26 (informational)")
	fl.StringVar(&f.output, "build-output", "", "the file the build produces, relative to the source root (default: the target path's last element)")
}

// set reports whether any provenance flag was given.
func (f *provenanceFlags) set() bool {
	return *f != provenanceFlags{}
}

// apply returns custom with the declared provenance merged in, or custom
// unchanged when no provenance flag was given. An incomplete or invalid
// declaration is refused.
func (f *provenanceFlags) apply(custom json.RawMessage) (json.RawMessage, error) {
	if !f.set() {
		return custom, nil
	}
	if f.source == "" || f.build == "" {
		return nil, errors.New("a provenance declaration needs --source and --build")
	}
	p := &provenance.Provenance{
		Source:   provenance.Source{URI: f.source, SHA256: f.sha256},
		Revision: f.revision,
		Build:    provenance.Build{Command: f.build, Toolchain: f.toolchain, Output: f.output},
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("--source/--revision/--build: %w", err)
	}
	return provenance.WithProvenance(custom, p)
}

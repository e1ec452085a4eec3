// Package capped reads whole files whose size the caller bounds: every file
// shiplog reads (keys, configs, metadata, policies, state) has a cap derived
// from its format, and a larger file is refused before it is read into
// memory.
package capped

import (
	"fmt"
	"io"
	"os"
)

// ReadFile reads the whole file at path, refusing one of more than max
// bytes. It reads at most max+1 bytes, so it is safe on files that grow or
// lie about their size (pipes, /proc).
func ReadFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	return b, nil
}

//go:build !unix

package main

import "os"

// maxRSS is 0 where the platform's process state has no peak RSS (Windows).
func maxRSS(*os.ProcessState) int64 { return 0 }

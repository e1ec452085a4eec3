//go:build !shiplog_fault

package main

// faultHook is nil in builds without the shiplog_fault tag (every release
// build): SHIPLOG_DEVICE_FAULT is ignored.
func faultHook() func(string) { return nil }

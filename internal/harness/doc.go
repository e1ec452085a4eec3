// Package harness starts shiplog's parts for any package's tests.
package harness

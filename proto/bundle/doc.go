// Package bundle holds the generated Go code of the shiplog update bundle
// header (bundle.proto). It is a container format only: the signed TUF
// metadata and tlog-proofs it carries are opaque bytes. Reading and verifying
// bundles is client/bundle; building them is repo/bundle.
package bundle

//go:generate protoc --go_out=. --go_opt=paths=source_relative bundle.proto

package audit

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/shiplog/shiplog/audit/replay"
)

type replayRelease = replay.Release

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

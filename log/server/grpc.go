package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/shiplog/shiplog/evidence/signoff"
	ledger "github.com/shiplog/shiplog/log"
	ledgerv1 "github.com/shiplog/shiplog/proto/ledger/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// maxGRPCMessage caps a gRPC request: a metadata file plus the repository
// id, role name and framing.
const maxGRPCMessage = MaxBody + 4096

// GRPCServer returns a gRPC server with the ledger service
// (proto/ledger/v1), capped messages, the per-client rate limit and the
// request budget applied when a stream's headers arrive (before its
// message is read), bounded streams per connection, keepalive and
// connection age limits, and InvalidArgument for malformed requests.
func (n *Node) GRPCServer() *grpc.Server {
	codec := newStrictCodec()
	s := grpc.NewServer(append(grpcFloodOptions(n.cfg.floodLimits()),
		grpc.MaxRecvMsgSize(maxGRPCMessage),
		grpc.ConnectionTimeout(10*time.Second),
		grpc.InTapHandle(n.grpcTap),
		grpc.ForceServerCodecV2(codec),
		grpc.UnaryInterceptor(codec.checkDecoded),
	)...)
	ledgerv1.RegisterLedgerServer(s, &grpcService{n: n})
	return s
}

type grpcService struct {
	ledgerv1.UnimplementedLedgerServer
	n *Node
}

// grpcError maps a ledger error to a gRPC status, through its HTTP status
// so both APIs classify errors in one place (ledger.HTTPStatus, and
// registrationStatus for registration).
func (g *grpcService) grpcError(err error) error {
	var code codes.Code
	msg := err.Error()
	switch registrationStatus(err) {
	case http.StatusUnauthorized:
		code = codes.Unauthenticated
	case http.StatusBadRequest:
		code = codes.InvalidArgument
	case http.StatusForbidden:
		code = codes.PermissionDenied
	case http.StatusNotFound:
		code = codes.NotFound
	case http.StatusConflict:
		code = codes.AlreadyExists
	case http.StatusGone:
		code = codes.FailedPrecondition
	case http.StatusRequestEntityTooLarge:
		code = codes.ResourceExhausted
	case http.StatusServiceUnavailable:
		code = codes.Unavailable
	case http.StatusGatewayTimeout:
		code = codes.DeadlineExceeded
	default:
		if errors.Is(err, context.Canceled) {
			return status.Error(codes.Canceled, "canceled")
		}
		g.n.log.Error("gRPC request failed", "err", err)
		code, msg = codes.Internal, "internal error"
	}
	return status.Error(code, msg)
}

func waitMS(v *uint32, def time.Duration) (time.Duration, error) {
	if v == nil {
		return def, nil
	}
	d := time.Duration(*v) * time.Millisecond
	if d > MaxWait {
		return 0, badRequest("wait_ms above %d", MaxWait.Milliseconds())
	}
	return d, nil
}

func (g *grpcService) Publish(ctx context.Context, req *ledgerv1.PublishRequest) (*ledgerv1.PublishResponse, error) {
	wait, err := waitMS(req.WaitMs, DefaultWait)
	if err != nil {
		return nil, g.grpcError(err)
	}
	rc, err := g.n.ledger.Publish(ctx, req.GetRepo(), req.GetRole(), req.GetMetadata(), wait)
	if err != nil {
		return nil, g.grpcError(err)
	}
	return &ledgerv1.PublishResponse{Index: rc.Index, LeafHash: rc.LeafHash[:], Entry: rc.Entry, Duplicate: rc.Duplicate, Proof: rc.Proof}, nil
}

func (g *grpcService) Proof(ctx context.Context, req *ledgerv1.ProofRequest) (*ledgerv1.ProofResponse, error) {
	wait, err := waitMS(req.WaitMs, 0)
	if err != nil {
		return nil, g.grpcError(err)
	}
	var idx uint64
	switch e := req.Entry.(type) {
	case *ledgerv1.ProofRequest_Index:
		idx = e.Index
	case *ledgerv1.ProofRequest_LeafHash:
		if len(e.LeafHash) != 32 {
			return nil, g.grpcError(badRequest("leaf_hash must be 32 bytes"))
		}
		if idx, err = g.n.ledger.LeafIndex([32]byte(e.LeafHash)); err != nil {
			return nil, g.grpcError(err)
		}
	default:
		return nil, g.grpcError(badRequest("want index or leaf_hash"))
	}
	var p []byte
	if wait > 0 {
		wctx, cancel := context.WithTimeout(ctx, wait)
		p, err = g.n.ledger.WaitProof(wctx, idx)
		cancel()
	} else {
		p, err = g.n.ledger.Proof(ctx, idx)
	}
	if err != nil {
		return nil, g.grpcError(err)
	}
	return &ledgerv1.ProofResponse{Proof: p}, nil
}

func (g *grpcService) Consistency(ctx context.Context, req *ledgerv1.ConsistencyRequest) (*ledgerv1.ConsistencyResponse, error) {
	hs, err := g.n.ledger.Consistency(ctx, req.GetOldSize(), req.GetNewSize())
	if err != nil {
		return nil, g.grpcError(err)
	}
	return &ledgerv1.ConsistencyResponse{Hashes: hs}, nil
}

func (g *grpcService) Checkpoint(ctx context.Context, _ *ledgerv1.CheckpointRequest) (*ledgerv1.CheckpointResponse, error) {
	cp, err := g.n.ledger.Checkpoint()
	if err != nil {
		return nil, g.grpcError(err)
	}
	return &ledgerv1.CheckpointResponse{Checkpoint: cp}, nil
}

// Role serves the latest logged entry of a role (GET
// /v1/repositories/<id>/roles/<role> over HTTP). Both names are checked
// against the entry alphabet and its 255-byte limit before any lookup.
func (g *grpcService) Role(ctx context.Context, req *ledgerv1.RoleRequest) (*ledgerv1.RoleResponse, error) {
	if err := validRoleQuery(req.GetRepo(), req.GetRole()); err != nil {
		return nil, g.grpcError(err)
	}
	st, err := g.n.ledger.Role(req.GetRepo(), req.GetRole())
	if err != nil {
		return nil, g.grpcError(err)
	}
	return &ledgerv1.RoleResponse{Version: st.Version, Sha256: st.SHA256[:], Index: st.Index}, nil
}

func (g *grpcService) RegisterChallenge(ctx context.Context, req *ledgerv1.RegisterChallengeRequest) (*ledgerv1.RegisterChallengeResponse, error) {
	c, err := g.n.issueChallenge(req.GetRepo(), req.GetRoot())
	if err != nil {
		return nil, g.grpcError(err)
	}
	return &ledgerv1.RegisterChallengeResponse{Token: c.Token, Url: c.URL, KeyAuthorization: c.KeyAuthorization, ExpiresUnix: c.Expires.Unix()}, nil
}

// errUnauthenticated is a registration without a challenge token and
// without an operator token for the id.
var errUnauthenticated = errors.New("an operator token for this repository id is required (authorization metadata), or a challenge token")

func (g *grpcService) Register(ctx context.Context, req *ledgerv1.RegisterRequest) (*ledgerv1.PublishResponse, error) {
	wait, err := waitMS(req.WaitMs, DefaultWait)
	if err != nil {
		return nil, g.grpcError(err)
	}
	var rc *ledger.Receipt
	if req.GetChallengeToken() != "" {
		rc, err = g.n.registerWithChallenge(ctx, req.GetRepo(), req.GetChallengeToken(), req.GetRoot(), wait)
	} else {
		md, _ := metadata.FromIncomingContext(ctx)
		auth := md.Get("authorization")
		bearer, ok := "", len(auth) == 1
		if ok {
			bearer, ok = strings.CutPrefix(auth[0], "Bearer ")
		}
		if !ok || !g.n.tokenAllows(bearer, req.GetRepo()) {
			return nil, status.Error(codes.Unauthenticated, errUnauthenticated.Error())
		}
		rc, err = g.n.ledger.Register(ctx, req.GetRepo(), req.GetRoot(), wait)
	}
	if err != nil {
		return nil, g.grpcError(err)
	}
	return &ledgerv1.PublishResponse{Index: rc.Index, LeafHash: rc.LeafHash[:], Entry: rc.Entry, Duplicate: rc.Duplicate, Proof: rc.Proof}, nil
}

// Attest logs a sign-off envelope (POST /v1/attest over HTTP).
func (g *grpcService) Attest(ctx context.Context, req *ledgerv1.AttestRequest) (*ledgerv1.PublishResponse, error) {
	wait, err := waitMS(req.WaitMs, DefaultWait)
	if err != nil {
		return nil, g.grpcError(err)
	}
	rc, err := g.n.ledger.Attest(ctx, req.GetRepo(), req.GetEnvelope(), wait)
	if err != nil {
		return nil, g.grpcError(err)
	}
	return &ledgerv1.PublishResponse{Index: rc.Index, LeafHash: rc.LeafHash[:], Entry: rc.Entry, Duplicate: rc.Duplicate, Proof: rc.Proof}, nil
}

// Attestations serves the logged attestations of one target digest (GET
// /v1/attestations over HTTP).
func (g *grpcService) Attestations(ctx context.Context, req *ledgerv1.AttestationsRequest) (*ledgerv1.AttestationsResponse, error) {
	if len(req.GetSubject()) != sha256.Size {
		return nil, g.grpcError(badRequest("subject must be 32 bytes"))
	}
	if len(req.GetKeys()) > ledger.MaxAttestationKeys {
		return nil, g.grpcError(badRequest("at most %d keys", ledger.MaxAttestationKeys))
	}
	keys := make([]signoff.KeyID, len(req.GetKeys()))
	for i, k := range req.GetKeys() {
		if len(k) != sha256.Size {
			return nil, g.grpcError(badRequest("keys must be 32 bytes each"))
		}
		keys[i] = signoff.KeyID(k)
	}
	ev, err := g.n.ledger.Attestations(ctx, req.GetRepo(), [sha256.Size]byte(req.GetSubject()), keys)
	if err != nil {
		return nil, g.grpcError(err)
	}
	resp := &ledgerv1.AttestationsResponse{Subject: ev.Subject[:], Truncated: ev.Truncated}
	for _, a := range ev.Attestations {
		resp.Attestations = append(resp.Attestations, &ledgerv1.Attestation{Envelope: a.Envelope, Proof: a.Proof})
	}
	return resp, nil
}

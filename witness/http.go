package witness

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/shiplog/shiplog/witness/addcheckpoint"
)

// maxMisbehaviourList bounds the records one read returns.
const maxMisbehaviourList = 256

// Handler returns the witness's HTTP API under prefix (the submission and
// monitoring prefix, "" or a path such as "/witness", without a trailing
// slash): POST <prefix>/add-checkpoint, GET <prefix>/<hex>/checkpoint,
// GET <prefix>/<hex>/misbehaviour and GET <prefix>/misbehaviour, plus
// GET /healthz, /readyz and, if gatherer is not nil, /metrics. Request
// bodies are capped at addcheckpoint.MaxRequestSize (413 beyond).
func (w *Witness) Handler(prefix string, gatherer prometheus.Gatherer) http.Handler {
	prefix = strings.TrimSuffix(prefix, "/")
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+prefix+"/add-checkpoint", w.serveAddCheckpoint)
	mux.HandleFunc("GET "+prefix+"/{log}/checkpoint", w.serveCheckpoint)
	mux.HandleFunc("GET "+prefix+"/{log}/misbehaviour", w.serveMisbehaviour)
	mux.HandleFunc("GET "+prefix+"/misbehaviour", w.serveMisbehaviour)
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, r *http.Request) {
		io.WriteString(rw, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, r *http.Request) {
		if !w.store.Healthy() {
			textError(rw, http.StatusServiceUnavailable, "state store unavailable")
			return
		}
		io.WriteString(rw, "ok\n")
	})
	if gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	}
	return http.MaxBytesHandler(mux, addcheckpoint.MaxRequestSize)
}

func (w *Witness) serveAddCheckpoint(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := w.addCheckpointStatus(rw, r)
	d := time.Since(start)
	w.metrics.requests.WithLabelValues(strconv.Itoa(code)).Inc()
	w.metrics.duration.Observe(d.Seconds())
	w.log.Debug("add-checkpoint", "status", code, "duration", d, "remote", r.RemoteAddr)
}

// addCheckpointStatus answers one add-checkpoint request and returns the
// status code sent. The mapping of errors to codes is c2sp.org/tlog-witness's.
func (w *Witness) addCheckpointStatus(rw http.ResponseWriter, r *http.Request) int {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return textError(rw, http.StatusRequestEntityTooLarge, "request too large")
		}
		return textError(rw, http.StatusBadRequest, "couldn't read request")
	}
	sigs, err := w.AddCheckpoint(r.Context(), body)
	var conflict *ConflictError
	var limited *RateLimitError
	switch {
	case err == nil:
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rw.Write(sigs)
		return http.StatusOK
	case errors.As(err, &conflict):
		rw.Header().Set("Content-Type", addcheckpoint.SizeContentType)
		rw.WriteHeader(http.StatusConflict)
		rw.Write(addcheckpoint.FormatSize(conflict.Size))
		return http.StatusConflict
	case errors.As(err, &limited):
		rw.Header().Set("Retry-After", strconv.Itoa(int(limited.RetryAfter.Seconds())))
		return textError(rw, http.StatusTooManyRequests, "log over its request quota")
	case errors.Is(err, ErrBadRequest):
		return textError(rw, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrUnknownLog):
		return textError(rw, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrForbidden):
		return textError(rw, http.StatusForbidden, err.Error())
	case errors.Is(err, ErrBadProof), errors.Is(err, ErrFork):
		return textError(rw, http.StatusUnprocessableEntity, err.Error())
	case errors.Is(err, ErrUnavailable), r.Context().Err() != nil:
		return textError(rw, http.StatusServiceUnavailable, "witness unavailable")
	default:
		w.log.Error("add-checkpoint failed", "error", err)
		return textError(rw, http.StatusInternalServerError, "internal error")
	}
}

// serveCheckpoint serves the latest cosigned checkpoint of the log whose
// origin's SHA-256 is the lowercase hex path segment.
func (w *Witness) serveCheckpoint(rw http.ResponseWriter, r *http.Request) {
	h, ok := originHash(r.PathValue("log"))
	if !ok {
		textError(rw, http.StatusNotFound, "not found")
		return
	}
	_, st, ok := w.store.LatestByHash(h)
	if !ok || st.Note == nil {
		textError(rw, http.StatusNotFound, "no checkpoint cosigned for this log")
		return
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("Cache-Control", "no-cache")
	rw.Write(st.Note)
}

func (w *Witness) serveMisbehaviour(rw http.ResponseWriter, r *http.Request) {
	origin := ""
	if seg := r.PathValue("log"); seg != "" {
		h, ok := originHash(seg)
		if !ok {
			textError(rw, http.StatusNotFound, "not found")
			return
		}
		if origin, _, ok = w.store.LatestByHash(h); !ok {
			textError(rw, http.StatusNotFound, "no state for this log")
			return
		}
	}
	ms, err := w.store.Misbehaviour(origin, maxMisbehaviourList)
	if err != nil {
		w.log.Error("couldn't read misbehaviour records", "error", err)
		textError(rw, http.StatusInternalServerError, "internal error")
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Cache-Control", "no-cache")
	json.NewEncoder(rw).Encode(ms)
}

// originHash parses a lowercase hex SHA-256.
func originHash(s string) ([sha256.Size]byte, bool) {
	var h [sha256.Size]byte
	if len(s) != 2*sha256.Size || strings.ToLower(s) != s {
		return h, false
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, false
	}
	return h, true
}

// OriginPath returns the path segment of a log's monitoring endpoints: the
// lowercase hex SHA-256 of its origin.
func OriginPath(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return hex.EncodeToString(h[:])
}

// textError writes a one-line text/plain error and returns the code.
func textError(rw http.ResponseWriter, code int, msg string) int {
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("X-Content-Type-Options", "nosniff")
	rw.WriteHeader(code)
	io.WriteString(rw, msg+"\n")
	return code
}

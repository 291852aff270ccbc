package api

import (
	"bytes"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/eventops/eventops-engine/config"
)

// Defaults of the api: limits, for a config that leaves them zero (a Server built without
// the loader, which fills in config.API's default tags; a test holds the two to the same
// values).
const (
	DefaultReadTimeout    = 10 * time.Second
	DefaultWriteTimeout   = 30 * time.Second
	DefaultIdleTimeout    = 60 * time.Second
	DefaultMaxConnections = 1024
	DefaultMaxHeaderBytes = 8 << 10
	DefaultMaxURLBytes    = 4 << 10
)

// When the server answers a request whose head it could not read whole (431, 414), the
// client is usually still sending it. Closing a socket with unread input makes the kernel
// send a reset, which can reach the client before it has read the answer: the client then
// sees "connection reset" instead of the status. So such a connection is half-closed and
// its input read and thrown away, within these bounds, before it is closed.
const (
	lingerTimeout = 500 * time.Millisecond
	lingerBytes   = 256 << 10
)

// limits are the server's limits in force: cfg's, with defaults for zero values.
type limits struct {
	readTimeout, writeTimeout, idleTimeout time.Duration
	maxConnections                         int
	maxHeaderBytes, maxURLBytes            int
}

func limitsOf(cfg *config.API) limits {
	return limits{
		readTimeout:    orDefault(cfg.ReadTimeout.D(), DefaultReadTimeout),
		writeTimeout:   orDefault(cfg.WriteTimeout.D(), DefaultWriteTimeout),
		idleTimeout:    orDefault(cfg.IdleTimeout.D(), DefaultIdleTimeout),
		maxConnections: orDefault(cfg.MaxConnections, DefaultMaxConnections),
		maxHeaderBytes: orDefault(int(cfg.MaxHeaderBytes), DefaultMaxHeaderBytes),
		maxURLBytes:    orDefault(int(cfg.MaxURLBytes), DefaultMaxURLBytes),
	}
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// fiberConfig applies the limits to the server's fiber app. The read buffer holds a whole
// request head, so its size is the head limit: a head that does not fit fails with
// fasthttp's ErrSmallBuffer, which fiber turns into a 431 that headTooLarge refines.
func (l limits) fiberConfig(c fiber.Config) fiber.Config {
	c.ReadTimeout = l.readTimeout
	c.WriteTimeout = l.writeTimeout
	c.IdleTimeout = l.idleTimeout
	c.Concurrency = l.maxConnections
	c.ReadBufferSize = l.maxHeaderBytes
	return c
}

// limitURL answers 414 to a request whose URL is longer than the limit.
func (s *Server) limitURL(c *fiber.Ctx) error {
	if n := len(c.Request().RequestURI()); n > s.limits.maxURLBytes {
		return jsonError(c, fiber.StatusRequestURITooLong, "URL of %d bytes is longer than the server's limit of %d bytes", n, s.limits.maxURLBytes)
	}
	return c.Next()
}

// headTooLarge answers a request head that did not fit in the read buffer: 414 when the
// request line alone did not fit (no line ended among the bytes the buffer held), else
// 431. The client may still be sending, so its connection lingers on close.
func (s *Server) headTooLarge(c *fiber.Ctx) error {
	cc, _ := c.Context().Conn().(*clientConn)
	if cc != nil {
		cc.linger.Store(true)
		if cc.sinceNewline >= s.limits.maxHeaderBytes {
			return jsonError(c, fiber.StatusRequestURITooLong, "request line longer than the server's limit of %d bytes", s.limits.maxHeaderBytes)
		}
	}
	return jsonError(c, fiber.StatusRequestHeaderFieldsTooLarge, "request headers larger than the server's limit of %d bytes", s.limits.maxHeaderBytes)
}

// clientListener hands out accepted connections as clientConns.
type clientListener struct {
	net.Listener
}

func (l clientListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &clientConn{Conn: conn}, nil
}

// clientConn is an accepted connection that knows what headTooLarge needs.
type clientConn struct {
	net.Conn
	// sinceNewline is how many bytes were read since the last '\n'. When a request head
	// overflows the read buffer, the buffer holds the last bytes read, so a value of at
	// least the buffer's size means the request line never ended. Only the goroutine that
	// serves the connection reads and uses it.
	sinceNewline int
	// linger makes Close drain unread input first (see lingerTimeout).
	linger atomic.Bool
	// writeTimeout, when set, is the deadline of each write, replacing the server's
	// deadline for the whole response (see deadlinePerWrite).
	writeTimeout atomic.Int64
}

// deadlinePerWrite gives every write from now on its own deadline of d, for a response
// that never ends (SSE). The rest of the connection's life keeps it: still bounded.
func (c *clientConn) deadlinePerWrite(d time.Duration) {
	c.writeTimeout.Store(int64(d))
}

func (c *clientConn) Write(p []byte) (int, error) {
	if d := time.Duration(c.writeTimeout.Load()); d > 0 {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(d))
	}
	return c.Conn.Write(p)
}

func (c *clientConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if i := bytes.LastIndexByte(p[:n], '\n'); i >= 0 {
		c.sinceNewline = n - 1 - i
	} else {
		c.sinceNewline += n
	}
	return n, err
}

// Close closes the connection, after a bounded drain of the client's unread input when
// linger is set, so that the client reads the answer rather than a reset.
func (c *clientConn) Close() error {
	if c.linger.CompareAndSwap(true, false) {
		if hc, ok := c.Conn.(interface{ CloseWrite() error }); ok {
			_ = hc.CloseWrite()
		}
		_ = c.Conn.SetReadDeadline(time.Now().Add(lingerTimeout))
		_, _ = io.CopyN(io.Discard, c.Conn, lingerBytes)
	}
	return c.Conn.Close()
}

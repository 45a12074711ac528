package reliability

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the switchboard command built for this test run.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "switchboard-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "switchboard")
	build := exec.Command("go", "build", "-o", binary, "github.com/switchboard/switchboard/cmd/switchboard")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build switchboard:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Test keys shared by the processes of one test (and the test itself).
const (
	secretKeys = "t1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	hashKey    = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
)

// freePort returns a loopback port nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is a running switchboard process.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
	lines  chan string
	exited chan struct{}
}

// start runs the binary with args and env, collecting its stdout lines.
func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, cmd: exec.Command(binary, args...), lines: make(chan string, 1024), exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	dieWithTest(p.cmd)
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
	}()
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { p.kill() })
	return p
}

// kill ends the process at once, as a crash would (SIGKILL).
func (p *proc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// output returns everything the process printed.
func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitLine waits for a stdout line matching re and returns its submatches.
func (p *proc) waitLine(re *regexp.Regexp) []string {
	p.t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case l := <-p.lines:
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-p.exited:
			p.t.Fatalf("process exited before printing %s:\n%s", re, p.output())
		case <-deadline:
			p.t.Fatalf("process did not print %s:\n%s", re, p.output())
		}
	}
}

// waitHTTP waits until url answers 200.
func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not become ready: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// carrier is a standalone simulated carrier process: it outlives the
// switchboard processes it serves and counts what reached it.
type carrier struct {
	*proc
	URL string
}

var listening = regexp.MustCompile(`listening on (http://\S+)`)

func startCarrier(t *testing.T) *carrier {
	t.Helper()
	p := start(t, nil, "sim", "serve", "--listen", "127.0.0.1:0", "--log-format", "text", "--log-level", "error")
	url := p.waitLine(listening)[1]
	return &carrier{proc: p, URL: url}
}

type carrierStats struct {
	Accepted        int64 `json:"accepted"`
	Duplicates      int64 `json:"duplicates"`
	CallbacksSent   int64 `json:"callbacks_sent"`
	CallbacksQueued int64 `json:"callbacks_queued"`
}

func (c *carrier) stats(t *testing.T) carrierStats {
	t.Helper()
	var s carrierStats
	getJSON(t, c.URL+"/v1/stats", "", &s)
	return s
}

func getJSON(t *testing.T, url, key string, v any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v: %s", url, err, b)
		}
	}
	return resp.StatusCode
}

func postJSON(ctx context.Context, url, key string, body any, headers ...string) (int, []byte, error) {
	return sendJSON(ctx, "POST", url, key, body, headers...)
}

func patchJSON(ctx context.Context, url, key string, body any) (int, []byte, error) {
	return sendJSON(ctx, "PATCH", url, key, body)
}

func sendJSON(ctx context.Context, method, url, key string, body any, headers ...string) (int, []byte, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out, nil
}

// service is a switchboard serve process with its settings, restartable on
// the same port and database.
type service struct {
	t        *testing.T
	env      []string
	args     []string
	base     string
	p        *proc
	Key, GW  string
	restarts int
}

var (
	keyLine = regexp.MustCompile(`^\s+(sb_[a-z0-9]+_[a-z0-9]+)\s*$`)
	gwLine  = regexp.MustCompile(`Created simulated gateway (\S+) `)
)

func newService(t *testing.T, databaseURL, simURL string, extraEnv ...string) *service {
	t.Helper()
	port := freePort(t)
	s := &service{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	s.env = append([]string{"SWITCHBOARD_SECRET_KEYS=" + secretKeys, "SWITCHBOARD_HASH_KEY=" + hashKey,
		"SWITCHBOARD_LOG_FORMAT=text", "SWITCHBOARD_LOG_LEVEL=warn",
		// Short job timeout: work of a killed process is taken over within seconds.
		"SWITCHBOARD_JOB_TIMEOUT=8s"}, extraEnv...)
	s.args = []string{"serve", "--addr", fmt.Sprintf("127.0.0.1:%d", port), "--database-url", databaseURL, "--sim-url", simURL, "--data", t.TempDir()}
	s.start(true)
	return s
}

func (s *service) start(first bool) {
	s.t.Helper()
	s.p = start(s.t, s.env, s.args...)
	if first {
		s.Key = s.p.waitLine(keyLine)[1]
		s.GW = s.p.waitLine(gwLine)[1]
	}
	waitHTTP(s.t, s.base+"/readyz")
}

// crash kills the process and starts it again on the same port and database.
func (s *service) crash() {
	s.t.Helper()
	s.p.kill()
	s.restarts++
	s.start(false)
}

func (s *service) crmPending() int {
	s.t.Helper()
	var c struct {
		Pending int `json:"pending"`
	}
	if getJSON(s.t, s.base+"/v1/crm", s.Key, &c) != http.StatusOK {
		return -1
	}
	return c.Pending
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

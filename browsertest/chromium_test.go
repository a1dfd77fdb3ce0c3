package browsertest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// findChromium returns the browser to run: $JWTAUTH_CHROMIUM, Debian's
// /usr/bin/chromium, or chromium or chromium-browser from $PATH. Without one the test
// skips, unless CI is set: there a missing browser is a failure, so that the browser
// test cannot silently not run.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("JWTAUTH_CHROMIUM"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const why = "no chromium: install Debian's chromium package, or set JWTAUTH_CHROMIUM"
	if os.Getenv("CI") != "" {
		t.Fatal(why + " (required because CI is set; .ci/run installs it)")
	}
	t.Skip(why)
	return ""
}

// startBrowser starts a headless Chromium with a fresh profile, and returns a context
// of its first tab. The browser stops when ctx ends or the test ends.
//
// The flags keep Chromium off the network: no background networking, component
// updates, sync or QUIC, which would try to reach hosts that a closed network (such as
// CI's) refuses. --no-sandbox because CI runs as root, where the sandbox cannot start;
// the browser only visits the test's own loopback pages.
func startBrowser(ctx context.Context, t *testing.T, execPath string) context.Context {
	t.Helper()
	out := &lockedBuffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.WindowSize(900, 900),
		chromedp.CombinedOutput(out),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		if t.Failed() {
			t.Logf("chromium's output:\n%s", out.String())
		}
	})
	start := time.Now()
	version, err := chromedp.CallBrowser(browser, cdpbrowser.GetVersion, cdp.Empty{})
	if err != nil {
		t.Fatalf("starting %s: %v\n%s", execPath, err, out.String())
	}
	t.Logf("%s started in %v", version.Product, time.Since(start).Round(time.Millisecond))
	return browser
}

// newProfile opens a tab in a new browser context of browser: a profile of its own,
// with its own cookies, like a fresh incognito window. Tabs opened with
// chromedp.NewContext(tab) share its cookies.
func newProfile(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	return tab
}

// newTab opens another tab in the browser context of tab.
func newTab(t *testing.T, tab context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(tab)
	t.Cleanup(cancel)
	return ctx
}

// do runs the steps in the tab, failing the test on an error.
func do(t *testing.T, tab context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tab, steps...); err != nil {
		t.Fatal(err)
	}
}

// eval evaluates the JavaScript expression in the tab, waits for it if it is a
// promise, and returns its value.
func eval[T any](t *testing.T, tab context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// waitFor waits until the JavaScript expression is true in the tab.
func waitFor(t *testing.T, tab context.Context, js string) {
	t.Helper()
	// Polled on an interval: requestAnimationFrame, the default, stops in a tab that
	// another window hides.
	poll := chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second))
	if _, err := chromedp.Run(tab, poll); err != nil {
		t.Fatalf("waiting for %s: %v", js, err)
	}
}

// slowNetwork gives the tab's requests to url a latency of d (DevTools network
// emulation): the browser reads the cookies for a request when it starts it, and takes
// in the response's Set-Cookie at least d later. Two tabs that send such requests less
// than d apart thus both send the cookies as they were, as on a slow connection.
func slowNetwork(t *testing.T, tab context.Context, url string, d time.Duration) {
	t.Helper()
	_, err := chromedp.Call(tab, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
		MatchedNetworkConditions: []*network.Conditions{{
			URLPattern:         url,
			Latency:            float64(d.Milliseconds()),
			DownloadThroughput: -1,
			UploadThroughput:   -1,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// netLog records, for each request of a tab, its URL, the headers and cookies the
// browser sent with it, and the Set-Cookie headers of its response, from the DevTools
// network events.
type netLog struct {
	mu         sync.Mutex
	urls       map[network.RequestID]string
	headers    map[network.RequestID]map[string]string
	cookies    map[network.RequestID][]*network.AssociatedCookie
	setCookies map[network.RequestID][]string
	order      []network.RequestID
}

// exchange is one request as the browser made it.
type exchange struct {
	URL        string
	Headers    map[string]string // the request's headers as sent, names in lower case
	Sent       map[string]string // cookie name to value, the cookies the browser attached
	SetCookies []string          // the response's Set-Cookie headers
}

func listenNetwork(t *testing.T, tab context.Context) *netLog {
	t.Helper()
	n := &netLog{
		urls:       map[network.RequestID]string{},
		headers:    map[network.RequestID]map[string]string{},
		cookies:    map[network.RequestID][]*network.AssociatedCookie{},
		setCookies: map[network.RequestID][]string{},
	}
	if err := chromedp.Listen(tab, n.event); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(tab, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	return n
}

func (n *netLog) event(ev any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		if _, seen := n.urls[ev.RequestID]; !seen {
			n.order = append(n.order, ev.RequestID)
		}
		n.urls[ev.RequestID] = ev.Request.URL
	case *network.EventRequestWillBeSentExtraInfo:
		n.cookies[ev.RequestID] = ev.AssociatedCookies
		h := map[string]string{}
		for k, v := range ev.Headers {
			if s, ok := v.(string); ok {
				h[strings.ToLower(k)] = s
			}
		}
		n.headers[ev.RequestID] = h
	case *network.EventResponseReceivedExtraInfo:
		for k, v := range ev.Headers {
			if s, ok := v.(string); ok && strings.EqualFold(k, "Set-Cookie") {
				n.setCookies[ev.RequestID] = strings.Split(s, "\n")
			}
		}
	}
}

// to returns the requests made to url so far, in order.
func (n *netLog) to(url string) []exchange {
	n.mu.Lock()
	defer n.mu.Unlock()
	var xs []exchange
	for _, id := range n.order {
		if n.urls[id] != url {
			continue
		}
		x := exchange{URL: url, Headers: n.headers[id], Sent: map[string]string{}, SetCookies: n.setCookies[id]}
		for _, c := range n.cookies[id] {
			if len(c.BlockedReasons) == 0 && c.Cookie != nil {
				x.Sent[c.Cookie.Name] = c.Cookie.Value
			}
		}
		xs = append(xs, x)
	}
	return xs
}

// setCookieValue returns the value that the Set-Cookie headers give the cookie name.
func setCookieValue(headers []string, name string) string {
	for _, h := range headers {
		if v, ok := strings.CutPrefix(strings.TrimSpace(h), name+"="); ok {
			v, _, _ = strings.Cut(v, ";")
			return v
		}
	}
	return ""
}

// lockedBuffer is a bytes.Buffer safe for the browser's output goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// report collects what the test saw, for artifacts/report.txt and the test log.
type report struct {
	mu    sync.Mutex
	lines []string
}

func (r *report) add(t *testing.T, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	r.mu.Lock()
	r.lines = append(r.lines, line)
	r.mu.Unlock()
}

func (r *report) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n") + "\n"
}

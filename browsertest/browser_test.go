package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// testTimeout bounds the whole test, the browser included: it stops when it ends.
const testTimeout = 100 * time.Second

// artifacts is where the screenshot and the report go; git ignores it, CI keeps it.
const artifacts = "artifacts"

// TestBrowserApp runs the demo's browser app in a real Chromium.
func TestBrowserApp(t *testing.T) {
	chromium := findChromium(t)
	started := time.Now()
	d := startDemo(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	browser := startBrowser(ctx, t, chromium)
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	rep := &report{}
	rep.add(t, "demo at %s/app/, %s", d.base, chromium)
	t.Cleanup(func() {
		rep.add(t, "browser test: %v in all, failed: %v", time.Since(started).Round(100*time.Millisecond), t.Failed())
		path := filepath.Join(artifacts, "report.txt")
		if err := os.WriteFile(path, []byte(rep.String()), 0o644); err != nil {
			t.Error(err)
		}
	})

	t.Run("LoginOrdersRefreshLogout", func(t *testing.T) { testFlow(t, d, browser, rep) })
	// Alice has no session before it (scenario 1 logged out) and none after it, as
	// scenario 2 counts hers.
	t.Run("SessionsListEndOther", func(t *testing.T) { testSessions(t, d, browser, rep) })
	t.Run("TwoTabsRefreshAtOnce", func(t *testing.T) { testTwoTabs(t, d, browser, rep) })
	t.Run("OtherOrigins", func(t *testing.T) { testOtherOrigins(t, d, browser, rep) })
	t.Run("CookieAttributes", func(t *testing.T) { testCookies(t, d, browser, rep) })
}

// Page helpers. The page counts its finished user actions in app.done, and keeps the
// requests it made, with their statuses, in app.requests.

// openApp loads the app in tab and waits until it shows the login form or the app.
func openApp(t *testing.T, d *demo, tab context.Context, state string) {
	t.Helper()
	do(t, tab, chromedp.Navigate(d.base+"/app/"))
	waitFor(t, tab, fmt.Sprintf(`window.app && app.done >= 1 && document.body.dataset.state === %q`, state))
}

// login logs alice in through the page's own function, and checks the status.
func login(t *testing.T, tab context.Context) {
	t.Helper()
	if status := eval[int](t, tab, `app.login("alice", "wonderland")`); status != 200 {
		t.Fatalf("login: %d", status)
	}
	waitFor(t, tab, `document.body.dataset.state === "app"`)
}

// click clicks the element with the id and waits until the page has finished the action.
func click(t *testing.T, tab context.Context, id string) {
	t.Helper()
	n := eval[int](t, tab, `app.done`)
	do(t, tab, chromedp.Click(chromedp.ID(id), chromedp.NodeVisible))
	waitFor(t, tab, fmt.Sprintf(`app.done > %d`, n))
}

// clickCSS clicks the first element that matches the CSS selector and waits until the
// page has finished the action.
func clickCSS(t *testing.T, tab context.Context, css string) {
	t.Helper()
	n := eval[int](t, tab, `app.done`)
	do(t, tab, chromedp.Click(chromedp.CSS(css), chromedp.NodeVisible))
	waitFor(t, tab, fmt.Sprintf(`app.done > %d`, n))
}

// requestsSince returns the requests the page made from index i on, as "METHOD PATH STATUS".
func requestsSince(t *testing.T, tab context.Context, i int) []string {
	t.Helper()
	return eval[[]string](t, tab, fmt.Sprintf(`app.requests.slice(%d).map(r => r.method + " " + r.path + " " + r.status)`, i))
}

func text(t *testing.T, tab context.Context, id string) string {
	t.Helper()
	return eval[string](t, tab, fmt.Sprintf(`document.getElementById(%q).innerText`, id))
}

// wantRequests checks the requests the page made since i.
func wantRequests(t *testing.T, tab context.Context, i *int, what string, want ...string) {
	t.Helper()
	got := requestsSince(t, tab, *i)
	*i += len(got)
	if !slices.Equal(got, want) {
		t.Errorf("%s: the page made %q, want %q", what, got, want)
	}
}

// testFlow is scenario 1: log in through the form, see the orders, add one, refresh the
// tokens, reload the orders with the new access cookie, log out.
func testFlow(t *testing.T, d *demo, browser context.Context, rep *report) {
	tab := newProfile(t, browser)
	openApp(t, d, tab, "login")
	i := 0
	wantRequests(t, tab, &i, "opening the page without cookies", "GET /auth/me 401")

	do(t, tab,
		chromedp.SendKeys(chromedp.ID("username"), "alice", chromedp.NodeVisible),
		chromedp.SendKeys(chromedp.ID("password"), "wonderland"),
	)
	click(t, tab, "login")
	wantRequests(t, tab, &i, "login", "POST /auth 200", "GET /auth/me 200", "GET /api/orders 200")
	if got := text(t, tab, "who"); got != "Signed in as Alice (orders:read orders:write)" {
		t.Errorf("after login the page says %q", got)
	}
	if got := text(t, tab, "orders"); got != "No orders yet." {
		t.Errorf("orders after login: %q", got)
	}
	if got := eval[string](t, tab, `document.cookie`); got != "" {
		t.Errorf("a script reads the cookies %q: they must be HttpOnly", got)
	}
	shot, err := chromedp.Run(tab, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	path, _ := filepath.Abs(filepath.Join(artifacts, "after-login.png"))
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	rep.add(t, "screenshot after login: %s", path)

	do(t, tab, chromedp.SendKeys(chromedp.ID("item"), "tea"))
	click(t, tab, "add")
	wantRequests(t, tab, &i, "adding an order", "POST /api/orders 201", "GET /api/orders 200")
	if got := text(t, tab, "orders"); got != "#1 tea (by alice)" {
		t.Errorf("orders after adding tea: %q", got)
	}

	click(t, tab, "refresh")
	wantRequests(t, tab, &i, "refresh", "POST /auth/refresh 200")
	if got := text(t, tab, "message"); got != "Tokens refreshed." {
		t.Errorf("after refresh the page says %q", got)
	}
	click(t, tab, "reload")
	wantRequests(t, tab, &i, "orders after the refresh", "GET /api/orders 200")

	click(t, tab, "logout")
	wantRequests(t, tab, &i, "logout", "POST /auth/logout 204")
	if state, msg := eval[string](t, tab, `document.body.dataset.state`), text(t, tab, "message"); state != "login" || msg != "Logged out." {
		t.Errorf("after logout the page shows %q and says %q", state, msg)
	}
	if n := len(getCookies(t, d, tab)); n != 0 {
		t.Errorf("%d cookies left after logout", n)
	}
	rep.add(t, "scenario 1, login → orders → refresh → logout, the page saw: %s",
		strings.Join(requestsSince(t, tab, 0), ", "))
	// The page, loaded again, has no session; the API refuses the browser.
	openApp(t, d, tab, "login")
	if status := eval[int](t, tab, `fetch("/api/orders").then(r => r.status)`); status != 401 {
		t.Errorf("orders after logout: %d, want 401", status)
	}
}

// testTwoTabs is scenario 2: two tabs of one profile refresh at the same moment, with
// the same refresh cookie; with the default reuse interval (10 s) both get 200 and the
// same new refresh token, and the session goes on in both. Over loopback one tab's
// whole round trip can end before the other tab's request leaves, which is no race; so
// the tabs' refresh requests get the latency of a slow connection, and the test checks
// that both sent the same refresh cookie.
func testTwoTabs(t *testing.T, d *demo, browser context.Context, rep *report) {
	tabA := newProfile(t, browser)
	netA := listenNetwork(t, tabA)
	openApp(t, d, tabA, "login")
	login(t, tabA)
	tabB := newTab(t, tabA)
	netB := listenNetwork(t, tabB)
	openApp(t, d, tabB, "app") // logged in by the cookies tab A got

	refreshURL := d.base + "/auth/refresh"
	slowNetwork(t, tabA, refreshURL, 500*time.Millisecond)
	slowNetwork(t, tabB, refreshURL, 500*time.Millisecond)
	// Both tabs wait for the same instant, then refresh through the page.
	at := eval[float64](t, tabA, `Date.now() + 300`)
	js := fmt.Sprintf(`new Promise(r => setTimeout(r, %f - Date.now()))
		.then(() => { const firedAt = Date.now(); return app.refreshTokens().then(status => ({status, firedAt})); })`, at)
	type result struct {
		Status  int     `json:"status"`
		FiredAt float64 `json:"firedAt"`
	}
	var results [2]result
	var errs [2]error
	var wg sync.WaitGroup
	for k, tab := range []context.Context{tabA, tabB} {
		wg.Go(func() {
			results[k], errs[k] = chromedp.Run(tab, chromedp.Evaluate[result](js, chromedp.EvalAwaitPromise))
		})
	}
	wg.Wait()
	for k, err := range errs {
		if err != nil {
			t.Fatalf("tab %c: %v", 'A'+k, err)
		}
	}
	if results[0].Status != 200 || results[1].Status != 200 {
		t.Fatalf("refreshing at once: tab A got %d, tab B %d; want 200 for both", results[0].Status, results[1].Status)
	}
	xa, xb := waitExchange(t, netA, refreshURL), waitExchange(t, netB, refreshURL)
	presentedA, presentedB := xa.Sent["refresh_token"], xb.Sent["refresh_token"]
	nextA, nextB := setCookieValue(xa.SetCookies, "refresh_token"), setCookieValue(xb.SetCookies, "refresh_token")
	if presentedA == "" || presentedA != presentedB {
		t.Fatalf("the tabs sent the refresh cookies %q and %q: want one token, sent at once", presentedA, presentedB)
	}
	if nextA == "" || nextA != nextB || nextA == presentedA {
		t.Errorf("both tabs sent the same refresh token and got %q and %q: want one new token for both", nextA, nextB)
	}
	rep.add(t, "scenario 2, two tabs refreshing at once (fired %.0f ms apart, both with the same refresh cookie): %d and %d; one new refresh token for both: %v",
		math.Abs(results[1].FiredAt-results[0].FiredAt), results[0].Status, results[1].Status, nextA != "" && nextA == nextB)

	// The session goes on, in both tabs, with one current refresh token.
	for k, tab := range []context.Context{tabA, tabB} {
		if status := eval[int](t, tab, `app.loadOrders()`); status != 200 {
			t.Errorf("tab %c: orders after the race: %d", 'A'+k, status)
		}
	}
	if status := eval[int](t, tabB, `app.refreshTokens()`); status != 200 {
		t.Errorf("tab B refreshes again: %d", status)
	}
	if status := eval[int](t, tabA, `app.refreshTokens()`); status != 200 {
		t.Errorf("tab A refreshes after tab B: %d", status)
	}
	if n := eval[int](t, tabA, `fetch("/auth/sessions").then(r => r.json()).then(b => b.sessions.length)`); n != 1 {
		t.Errorf("alice has %d sessions, want the one both tabs share", n)
	}
}

// appRequest is a request of an app that is not a browser (no Origin, no
// Sec-Fetch-Site, no cookie), as curl makes it: the JSON body, the Authorization header
// when access is set, and userAgent as its User-Agent. It returns the status and the
// JSON answer.
func appRequest(t *testing.T, method, url, userAgent, access, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Content-Type", "application/json")
	if access != "" {
		req.Header.Set("Authorization", "Bearer "+access)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil && err != io.EOF {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp.StatusCode, m
}

// sessionRow is one entry of the page's sessions list, as the page shows it.
type sessionRow struct {
	ID      string `json:"id"`
	Label   string `json:"label"`
	Text    string `json:"text"`
	Current bool   `json:"current"`
	End     bool   `json:"end"` // it has an End button
}

// sessionRows reads the page's sessions list.
func sessionRows(t *testing.T, tab context.Context) []sessionRow {
	t.Helper()
	return eval[[]sessionRow](t, tab, `[...document.querySelectorAll("#sessions li")].map(li => ({
		id: li.dataset.sessionId, label: li.querySelector(".label").textContent, text: li.innerText,
		current: li.classList.contains("current"), end: li.querySelector("button.end") !== null}))`)
}

// testSessions is scenario 5, run second: alice logs in in the page, and a second time as
// an app (from Go, with curl's User-Agent, the tokens in the body). The page's sessions
// list shows both, labelled from their User-Agent headers, the browser's marked
// current; its End button on the other one sends DELETE /auth/sessions/{id} through the
// page's fetch, with the access cookie, Origin and Sec-Fetch-Site: same-origin, which
// the server's cross-origin check lets through. The list then shows the browser's
// session alone, and the app's refresh is a 401. The page logs out at the end.
func testSessions(t *testing.T, d *demo, browser context.Context, rep *report) {
	const curlUA = "curl/8.5.0"
	tab := newProfile(t, browser)
	netlog := listenNetwork(t, tab)
	openApp(t, d, tab, "login")
	login(t, tab)
	userAgent := eval[string](t, tab, `navigator.userAgent`)

	code, m := appRequest(t, "POST", d.base+"/auth", curlUA, "", `{"username": "alice", "password": "wonderland"}`)
	appAccess, appRefresh := m["access_token"], m["refresh_token"]
	if code != 200 || appAccess == nil || appRefresh == nil {
		t.Fatalf("the app's login: %d %v", code, m)
	}
	// The app's session works: a refresh rotates its refresh token.
	code, m = appRequest(t, "POST", d.base+"/auth/refresh", curlUA, appAccess.(string), `{"refresh_token": "`+appRefresh.(string)+`"}`)
	appAccess, appRefresh = m["access_token"], m["refresh_token"]
	if code != 200 || appAccess == nil || appRefresh == nil {
		t.Fatalf("the app's refresh before the End: %d %v", code, m)
	}

	i := len(requestsSince(t, tab, 0))
	click(t, tab, "sessions-load")
	wantRequests(t, tab, &i, "showing the sessions", "GET /auth/sessions 200")
	rows := sessionRows(t, tab)
	var mine, other sessionRow
	for _, r := range rows {
		if r.Current {
			mine = r
		} else {
			other = r
		}
	}
	if len(rows) != 2 || mine.ID == "" || other.ID == "" {
		t.Fatalf("the sessions list shows %+v, want two sessions of alice, one of them current (did an earlier scenario leave one?)", rows)
	}
	if mine.Label != "Chrome on Linux" || mine.End || !strings.Contains(mine.Text, "current") {
		t.Errorf("the browser's session (User-Agent %q) shows as %+v, want the label Chrome on Linux, the current marker and no End button", userAgent, mine)
	}
	if other.Label != curlUA || !other.End {
		t.Errorf("the app's session shows as %+v, want the label %s and an End button", other, curlUA)
	}
	for _, r := range rows {
		if !strings.Contains(r.Text, "logged in ") || !strings.Contains(r.Text, ", last used ") {
			t.Errorf("a session shows %q, want when it logged in and was last used", r.Text)
		}
	}
	shot, err := chromedp.Run(tab, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	path, _ := filepath.Abs(filepath.Join(artifacts, "sessions.png"))
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	rep.add(t, "scenario 5, Chromium's User-Agent %q; the sessions list shows %q and %q; screenshot: %s",
		userAgent, strings.ReplaceAll(mine.Text, "\n", " "), strings.ReplaceAll(other.Text, "\n", " "), path)

	events := d.eventMark()
	deletePath := "/auth/sessions/" + other.ID
	clickCSS(t, tab, fmt.Sprintf(`#sessions button.end[data-session-id=%q]`, other.ID))
	wantRequests(t, tab, &i, "ending the app's session", "DELETE "+deletePath+" 204", "GET /auth/sessions 200")
	if got := text(t, tab, "message"); got != "Session ended." {
		t.Errorf("after the End the page says %q", got)
	}
	after := sessionRows(t, tab)
	if len(after) != 1 || after[0].ID != mine.ID || !after[0].Current {
		t.Errorf("after the End the list shows %+v, want the browser's session alone", after)
	}
	ended := d.waitEvents(t, events, "session_ended", 1, 5*time.Second)
	xs := netlog.to(d.base + deletePath)
	if len(xs) != 1 {
		t.Fatalf("the browser sent %d requests to %s, want 1", len(xs), deletePath)
	}
	x := xs[0]
	if x.Sent["__Host-access_token"] == "" || x.Headers["origin"] != d.base || x.Headers["sec-fetch-site"] != "same-origin" {
		t.Errorf("the DELETE went with the cookies %v, Origin %q, Sec-Fetch-Site %q; want the access cookie, %s, same-origin",
			keys(x.Sent), x.Headers["origin"], x.Headers["sec-fetch-site"], d.base)
	}

	code, m = appRequest(t, "POST", d.base+"/auth/refresh", curlUA, appAccess.(string), `{"refresh_token": "`+appRefresh.(string)+`"}`)
	if code != 401 || m["exception"] != "AuthenticationFailed" {
		t.Errorf("the app's refresh after the End: %d %v, want 401 AuthenticationFailed", code, m)
	}
	rep.add(t, "scenario 5, End on the %s session: the page saw %s; the browser sent it with the cookies %v, Origin %s, Sec-Fetch-Site %s; the demo logged %d session_ended; the list then shows %d session (current: %v); the app's refresh: %d %v",
		curlUA, strings.Join(requestsSince(t, tab, i-2), ", "), keys(x.Sent), x.Headers["origin"], x.Headers["sec-fetch-site"],
		ended, len(after), len(after) == 1 && after[0].Current, code, m["exception"])

	click(t, tab, "logout")
	wantRequests(t, tab, &i, "logout", "POST /auth/logout 204")
}

// keys returns the map's keys, sorted.
func keys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// waitExchange waits until the network log holds a request to url with the cookies it
// sent and its response's headers, and returns the last.
func waitExchange(t *testing.T, n *netLog, url string) exchange {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		xs := n.to(url)
		if len(xs) > 0 && xs[len(xs)-1].SetCookies != nil && len(xs[len(xs)-1].Sent) > 0 {
			return xs[len(xs)-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no network events for a request to %s", url)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// attackPage is a page of another origin that, as soon as it loads, tries to act with
// the cookies of the victim's origin: a form post that logs the browser in as bob
// (login CSRF; into a new window, a top-level navigation, whose cookies a browser
// stores even cross-site), a form post that creates an order (a text/plain body that
// reads as JSON), a credentialed fetch that creates an order, and a form post that logs
// the victim out. The other forms post into iframes, so that the page stays.
var attackPage = template.Must(template.New("attack").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Another origin</title></head>
<body>
<h1>Nothing to see here</h1>
<form id="login" method="post" enctype="text/plain" target="_blank" action="{{.}}/auth">
<input type="hidden" name='{"username": "bob", "password": "builder", "x": "' value='"}'>
</form>
<form id="order" method="post" enctype="text/plain" target="f1" action="{{.}}/api/orders">
<input type="hidden" name='{"item": "forged by a form", "x": "' value='"}'>
</form>
<form id="logout" method="post" target="f2" action="{{.}}/auth/logout"></form>
<iframe name="f1"></iframe><iframe name="f2"></iframe>
<script>
const victim = {{.}};
// submit posts the form into its iframe, and waits for the answer to load there
// (a 204 loads nothing, hence the timer).
function submit(id) {
  const form = document.getElementById(id);
  const frame = document.querySelector('iframe[name="' + form.target + '"]');
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 3000);
    frame.addEventListener('load', () => { clearTimeout(timer); resolve(); }, { once: true });
    form.submit();
  });
}
window.addEventListener('load', async () => {
  document.getElementById('login').submit();
  await new Promise((resolve) => setTimeout(resolve, 1000)); // the login's answer
  await submit('order');
  try {
    await fetch(victim + '/api/orders', {
      method: 'POST', mode: 'no-cors', credentials: 'include',
      headers: { 'Content-Type': 'text/plain' }, body: '{"item": "forged by fetch"}',
    });
  } catch (e) {}
  await submit('logout');
  window.attackDone = true;
});
</script>
</body>
</html>
`))

// attacks are the requests attackPage makes, as the demo logs them, sorted.
var attacks = []string{"POST /api/orders", "POST /api/orders", "POST /auth", "POST /auth/logout"}

// serveAttacker serves attackPage on a free port of host, until the test ends.
func serveAttacker(t *testing.T, host, victim string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", host, err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			attackPage.Execute(w, victim)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/"
}

// testOtherOrigins is scenario 3: while alice is logged in, her browser opens a page of
// another origin that tries to act with her cookies. Nothing changes: her orders stay
// as they were, she stays logged in as herself, and the server refused every forged
// request that a cookie could authorise, and the login, with 403 CrossOriginRequest
// (its cross_origin_refused events are in the demo's log). The same-site page (the same host on another
// port) is the hard case: SameSite=Lax does not stop its requests, the browser attaches
// the cookies, and only jwtauth's cross-origin check refuses them. From the cross-site
// page (127.0.0.2) the browser attaches no cookie, but a login in a new window would
// still set them.
func testOtherOrigins(t *testing.T, d *demo, browser context.Context, rep *report) {
	for _, tc := range []struct {
		name, host  string
		cookiesSent bool           // whether the browser attaches the cookies to the forged requests
		want        map[string]int // the server's answer to each forged request
		refusals    int            // how many of them the cross-origin check refuses
	}{
		// The browser attaches the cookies (same-site): the check refuses all four.
		{"SameSiteOtherPort", "127.0.0.1", true, map[string]int{"POST /auth": 403, "POST /api/orders": 403, "POST /auth/logout": 403}, 4},
		// The browser attaches no cookie (SameSite=Lax): 401, nothing to check; but the
		// login, which needs none, is refused by the check.
		{"CrossSite", "127.0.0.2", false, map[string]int{"POST /auth": 403, "POST /api/orders": 401, "POST /auth/logout": 401}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			attacker := serveAttacker(t, tc.host, d.base)
			victim := newProfile(t, browser)
			openApp(t, d, victim, "login")
			login(t, victim)
			if status := eval[int](t, victim, `app.addOrder("alice's own order")`); status != 201 {
				t.Fatalf("alice adds an order: %d", status)
			}
			const ordersJS = `fetch("/api/orders").then(r => r.text())`
			const meJS = `fetch("/auth/me").then(r => r.json()).then(b => b.me ? b.me.user_id : JSON.stringify(b))`
			before := eval[string](t, victim, ordersJS)

			mark, events := d.mark(), d.eventMark()
			tab := newTab(t, victim) // a tab of alice's browser, with her cookies
			netlog := listenNetwork(t, tab)
			do(t, tab, chromedp.Navigate(attacker))
			waitFor(t, tab, `window.attackDone === true`)

			// What the server saw and answered.
			got := d.waitPosts(t, mark, len(attacks), 10*time.Second)
			var seen, paths []string
			for _, r := range got {
				seen = append(seen, r.String())
				paths = append(paths, r.Method+" "+r.Path)
				if want := tc.want[r.Method+" "+r.Path]; r.Status != want {
					t.Errorf("forged %v: want %d", r, want)
				}
			}
			if slices.Sort(paths); !slices.Equal(paths, attacks) {
				t.Errorf("the server saw %q, want %q", paths, attacks)
			}
			// Why: the demo logs jwtauth's security events, one per refusal.
			refused := d.waitEvents(t, events, "cross_origin_refused", tc.refusals, 5*time.Second)
			// What the browser sent, where this tab saw it: the same-site iframes and
			// the fetch (a cross-site iframe is a target of its own).
			var withCookie int
			for _, path := range []string{"/auth", "/api/orders", "/auth/logout"} {
				for _, x := range netlog.to(d.base + path) {
					if x.Sent["__Host-access_token"] != "" {
						withCookie++
					}
				}
			}
			if tc.cookiesSent && withCookie == 0 {
				t.Errorf("the browser attached the access cookie to none of the forged requests: the test does not test the check")
			}
			if !tc.cookiesSent && withCookie > 0 {
				t.Errorf("the browser attached the access cookie to %d cross-site requests", withCookie)
			}

			// Nothing changed for alice.
			after := eval[string](t, victim, ordersJS)
			if after != before {
				t.Errorf("alice's orders changed:\nbefore %s\nafter  %s", before, after)
			}
			me := eval[string](t, victim, meJS)
			if me != "alice" {
				t.Errorf("after the attack the browser is logged in as %q, want alice", me)
			}
			if status := eval[int](t, victim, `app.refreshTokens()`); status != 200 {
				t.Errorf("alice refreshes after the attack: %d", status)
			}
			rep.add(t, "scenario 3, page at %s: the server answered %s, and logged %d cross_origin_refused; the browser attached the access cookie to %d of the forged requests it showed; alice's orders unchanged: %v, logged in as: %s",
				attacker, strings.Join(seen, ", "), refused, withCookie, after == before, me)
		})
	}
}

// getCookies returns the cookies the browser holds for the app and its refresh endpoint.
func getCookies(t *testing.T, d *demo, tab context.Context) []*network.Cookie {
	t.Helper()
	res, err := chromedp.Call(tab, network.GetCookies, network.GetCookiesParams{
		URLs: []string{d.base + "/app/", d.base + "/auth/refresh"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return res.Cookies
}

// testCookies is scenario 4: the cookies' attributes as Chromium stored them. The
// login is a script's own fetch to /auth, the route that answers curl with the tokens in
// the body: the browser marks the fetch as a browser's (Origin, Sec-Fetch-Site), so a
// script, an injected one too, gets cookies it cannot read and a body without tokens.
func testCookies(t *testing.T, d *demo, browser context.Context, rep *report) {
	tab := newProfile(t, browser)
	openApp(t, d, tab, "login")
	body := eval[string](t, tab, `fetch("/auth", {method: "POST", headers: {"Content-Type": "application/json"},
		body: JSON.stringify({username: "alice", password: "wonderland"})}).then(r => r.text())`)
	if strings.TrimSpace(body) != "{}" {
		t.Errorf("a script's login at /auth reads %q, want {}: no token in the body", body)
	}
	rep.add(t, "scenario 4, a script's own fetch of POST /auth reads the body %s", strings.TrimSpace(body))
	host, _, _ := net.SplitHostPort(strings.TrimPrefix(d.base, "http://"))
	want := map[string]string{"__Host-access_token": "/", "refresh_token": "/auth/refresh"}
	got := map[string]bool{}
	for _, c := range getCookies(t, d, tab) {
		rep.add(t, "scenario 4, cookie %s as Chromium stored it: Domain=%s (host-only: %v) Path=%s HttpOnly=%v Secure=%v SameSite=%s Session=%v SourceScheme=%s",
			c.Name, c.Domain, !strings.HasPrefix(c.Domain, "."), c.Path, c.HTTPOnly, c.Secure, c.SameSite, c.Session, c.SourceScheme)
		path, ok := want[c.Name]
		if !ok {
			t.Errorf("unexpected cookie %s", c.Name)
			continue
		}
		got[c.Name] = true
		if !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteLax || c.Domain != host {
			t.Errorf("cookie %s: HttpOnly=%v Secure=%v SameSite=%q Domain=%q; want HttpOnly, Secure, Lax, host-only %s",
				c.Name, c.HTTPOnly, c.Secure, c.SameSite, c.Domain, host)
		}
		if c.Path != path {
			t.Errorf("cookie %s: Path=%s, want %s", c.Name, c.Path, path)
		}
	}
	for name := range want {
		if !got[name] {
			t.Errorf("Chromium holds no %s cookie", name)
		}
	}
}

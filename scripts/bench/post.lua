-- wrk: the same form POST every time ($BENCH_BODY, with the CSRF cookie in $BENCH_COOKIE).
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = os.getenv("BENCH_COOKIE")

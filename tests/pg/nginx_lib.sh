# nginx (Debian's nginx-light) as a round-robin load balancer in front of
# ocireg replicas on loopback, as the README recommends: no request or
# response buffering, no body size limit, keep-alive to the replicas.
#
#   start_nginx_lb DIR PORT UPSTREAM_PORT...   sets NGINX_PID
#
# The caller stops it by PID (it runs in the foreground, daemon off).
start_nginx_lb() {
  local dir="$1" port="$2"
  shift 2
  mkdir -p "$dir"
  local servers="" p
  for p in "$@"; do
    servers+="    server 127.0.0.1:$p max_fails=1 fail_timeout=3s;"$'\n'
  done
  cat >"$dir/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  upstream ocireg {
$servers    keepalive 64;
  }
  server {
    listen 127.0.0.1:$port;
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_buffering off;
    location / {
      proxy_pass http://ocireg;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      proxy_read_timeout 300s;
      # A kept-alive connection to a replica that died fails only once the
      # request is written to it: pass even a POST on to the next replica
      # then (a body already streamed is never sent twice).
      proxy_next_upstream error timeout non_idempotent;
    }
  }
}
CONF
  nginx -c "$dir/nginx.conf" -p "$dir" &
  NGINX_PID=$!
  local i
  for i in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && return 0; sleep 0.05; done
  echo "nginx did not start:"; tail -5 "$dir/error.log"
  return 1
}

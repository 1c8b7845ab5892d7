-- POST the same JPEG with distinct trailing bytes after its EOI marker (decoders ignore
-- them), so every upload is new content and nothing is deduplicated.
-- args: path to the JPEG, a salt unique to this run
local nthreads = 0
function setup(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
end
function init(args)
  local f = assert(io.open(args[1], "rb"))
  body = f:read("*a")
  f:close()
  salt = args[2] or "salt"
  counter = 0
end
function request()
  counter = counter + 1
  return wrk.format("POST", "/image?filename=bench.jpg", { ["Content-Type"] = "image/jpeg" },
    body .. "bench-" .. salt .. "-" .. tid .. "-" .. counter)
end

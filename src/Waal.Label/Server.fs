/// The labelling page's server (ASP.NET Core's Kestrel): one page, a JSON state, the pool's images by index, and
/// POSTs that label, undo and skip. Every request needs the session token (the URL's once, then a cookie);
/// POSTs also need it in a header the page sends (a cross-site form cannot), and, on the loopback address, the
/// Host header must name the loopback address (no DNS rebinding).
module internal Waal.Label.Server

open System
open System.IO
open System.Net
open System.Security.Cryptography
open System.Text
open System.Text.Json
open System.Threading.Tasks
open Microsoft.AspNetCore.Builder
open Microsoft.AspNetCore.Hosting
open Microsoft.AspNetCore.Http
open Microsoft.AspNetCore.Hosting.Server
open Microsoft.AspNetCore.Hosting.Server.Features
open Microsoft.Extensions.DependencyInjection
open Microsoft.Extensions.Logging
open Waal.Core
open Waal.Data
open Waal.Label.Desk

/// Where the server listens.
type Binding = { Host: string; Port: int }

/// A running server: its address (with the token) and how to stop it.
type Running =
    {
        /// `http://HOST:PORT/?token=TOKEN`: what a person opens.
        Url: string
        /// `http://HOST:PORT`.
        BaseUrl: string
        Token: string
        Stop: unit -> Task
    }

let private page =
    lazy
        (use stream =
            typeof<Binding>.Assembly.GetManifestResourceStream "Waal.Label.page.html"

         use reader = new StreamReader(stream)
         reader.ReadToEnd())

/// A fresh session token: 32 random bytes, hex.
let newToken () =
    Convert.ToHexString(RandomNumberGenerator.GetBytes 32).ToLowerInvariant()

let private same (a: string) (b: string) =
    not (isNull a)
    && CryptographicOperations.FixedTimeEquals(
        ReadOnlySpan(Encoding.UTF8.GetBytes a),
        ReadOnlySpan(Encoding.UTF8.GetBytes b)
    )

let private contentTypes =
    dict
        [
            ".png", "image/png"
            ".jpg", "image/jpeg"
            ".jpeg", "image/jpeg"
            ".bmp", "image/bmp"
            ".webp", "image/webp"
        ]

let private write (ctx: HttpContext) (status: int) (contentType: string) (body: string) =
    ctx.Response.StatusCode <- status
    ctx.Response.ContentType <- contentType
    ctx.Response.WriteAsync body

let private text (ctx: HttpContext) (status: int) (body: string) =
    write ctx status "text/plain; charset=utf-8" (body + "\n")

let private json (ctx: HttpContext) (body: string) =
    ctx.Response.Headers.CacheControl <- "no-store"
    write ctx 200 "application/json; charset=utf-8" body

/// An integer field of a request's JSON object.
let private intField (root: JsonElement) (name: string) =
    match root.TryGetProperty name with
    | true, v when v.ValueKind = JsonValueKind.Number ->
        match v.TryGetInt32() with
        | true, x -> Ok x
        | _ -> Error $"'{name}' is not a 32-bit integer"
    | _ -> Error $"'{name}' is missing or not a number"

/// The named integer fields, in order; the first missing or mistyped one is the error.
let rec private intFields (root: JsonElement) (names: string list) acc =
    match names with
    | [] -> Ok(List.rev acc)
    | name :: rest -> intField root name |> Result.bind (fun x -> intFields root rest (x :: acc))

/// Reads a small JSON body (at most 4 KiB) and the named integer fields of it.
let private readInts (ctx: HttpContext) (names: string list) : Task<Result<int list, string>> =
    task {
        if ctx.Request.ContentLength.HasValue && ctx.Request.ContentLength.Value > 4096L then
            return Error "the request body is larger than 4 KiB"
        else
            use reader = new StreamReader(ctx.Request.Body, Encoding.UTF8)
            let buffer = Array.zeroCreate<char> 4097
            let! n = reader.ReadBlockAsync(buffer, 0, buffer.Length)

            if n > 4096 then
                return Error "the request body is larger than 4 KiB"
            else
                try
                    use doc = JsonDocument.Parse(String(buffer, 0, n))

                    if doc.RootElement.ValueKind <> JsonValueKind.Object then
                        return Error "the body is not a JSON object"
                    else
                        return intFields doc.RootElement names []
                with :? JsonException ->
                    return Error "the body is not a JSON object"
    }

/// The largest Label Studio export the page's import takes (a task is a few hundred bytes).
let private importBytes = 16 * 1024 * 1024

/// Reads a request body of at most `cap` bytes as UTF-8 text, never more.
let private readBody (ctx: HttpContext) (cap: int) : Task<Result<string, string>> =
    task {
        let limit = $"the request body is larger than {Files.limitText (int64 cap)}"

        if
            ctx.Request.ContentLength.HasValue
            && ctx.Request.ContentLength.Value > int64 cap
        then
            return Error limit
        else
            use buffer = new MemoryStream()
            let chunk = Array.zeroCreate<byte> 65536
            let mutable ended = false
            let mutable over = false

            while not ended && not over do
                let! n = ctx.Request.Body.ReadAsync(chunk, 0, chunk.Length)

                if n = 0 then ended <- true
                elif buffer.Length + int64 n > int64 cap then over <- true
                else buffer.Write(chunk, 0, n)

            if over then
                return Error limit
            else
                return Ok(Encoding.UTF8.GetString(buffer.GetBuffer(), 0, int buffer.Length))
    }

/// Starts the server over a desk; `binding.Port` 0 takes a free port.
let start (desk: Desk) (binding: Binding) : Task<Running> =
    task {
        let token = newToken ()
        let builder = WebApplication.CreateBuilder(WebApplicationOptions(Args = [||]))
        builder.Logging.ClearProviders() |> ignore

        builder.WebHost.UseKestrel(fun o ->
            o.AddServerHeader <- false
            o.Listen(IPAddress.Parse binding.Host, binding.Port))
        |> ignore

        let app = builder.Build()
        let loopback = IPAddress.IsLoopback(IPAddress.Parse binding.Host)
        // The port Kestrel took (binding.Port may be 0): it names the cookie, so sessions on other ports of the
        // same host keep their own.
        let port = ref binding.Port
        let cookie () = $"waal_token_{port.Value}"

        let handle (ctx: HttpContext) : Task =
            task {
                let request = ctx.Request
                let headers = ctx.Response.Headers
                headers["X-Content-Type-Options"] <- "nosniff"
                headers["Referrer-Policy"] <- "no-referrer"

                headers["Content-Security-Policy"] <-
                    "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; form-action 'none'"

                let host = request.Host.Host

                let hostOk =
                    not loopback
                    || host = "127.0.0.1"
                    || host = "localhost"
                    || host = "[::1]"
                    || host = "::1"

                let fromQuery = request.Query["token"].ToString()

                let fromCookie =
                    match request.Cookies.TryGetValue(cookie ()) with
                    | true, v -> v
                    | _ -> null

                let viaQuery = fromQuery <> "" && same fromQuery token
                let authorised = viaQuery || same fromCookie token
                let path = request.Path.Value

                if not hostOk then
                    do! text ctx 421 $"this server answers on 127.0.0.1 only, not on '{host}'"
                elif not authorised then
                    do!
                        text
                            ctx
                            401
                            "this labelling session needs its token: open the address 'waal label' printed (it ends in ?token=...)"
                else
                    if viaQuery then
                        ctx.Response.Cookies.Append(
                            cookie (),
                            token,
                            CookieOptions(
                                HttpOnly = true,
                                SameSite = SameSiteMode.Strict,
                                Path = "/",
                                IsEssential = true
                            )
                        )

                    if HttpMethods.IsPost request.Method then
                        let origin = request.Headers.Origin.ToString()

                        let originOk = origin = "" || origin = $"{request.Scheme}://{request.Host.Value}"

                        if not (originOk && same (request.Headers["X-Waal-Token"].ToString()) token) then
                            do!
                                text
                                    ctx
                                    403
                                    "a state-changing request must come from the labelling page itself (X-Waal-Token header, same origin)"
                        else
                            let answer (r: Result<unit, Refusal>) =
                                match r with
                                | Ok() -> json ctx (desk.StateJson())
                                | Error refusal -> text ctx refusal.Status refusal.Message

                            match path with
                            | "/api/label" ->
                                match! readInts ctx [ "index"; "label" ] with
                                | Ok [ index; label ] -> do! answer (desk.Give(index, label))
                                | Ok _ -> do! text ctx 400 "expected {\"index\": N, \"label\": C}"
                                | Error m -> do! text ctx 400 m
                            | "/api/skip" ->
                                match! readInts ctx [ "index" ] with
                                | Ok [ index ] -> do! answer (desk.Skip index)
                                | Ok _ -> do! text ctx 400 "expected {\"index\": N}"
                                | Error m -> do! text ctx 400 m
                            | "/api/undo" -> do! answer (desk.Undo())
                            | "/api/import/label-studio" ->
                                match! readBody ctx importBytes with
                                | Error m -> do! text ctx 413 $"Label Studio export: {m}"
                                | Ok body ->
                                    // All or nothing, as the offline import: one refused task changes nothing.
                                    match Exports.ofLabelStudio desk.Classes body with
                                    | Error m -> do! text ctx 400 $"Label Studio export: {m}"
                                    | Ok pairs ->
                                        match desk.GiveAll pairs with
                                        | Error r -> do! text ctx r.Status $"Label Studio export: {r.Message}"
                                        | Ok() -> do! json ctx (desk.StateJson())
                            | _ -> do! text ctx 404 $"no such action: {path}"
                    elif HttpMethods.IsGet request.Method || HttpMethods.IsHead request.Method then
                        match path with
                        | "/" when viaQuery ->
                            // The token leaves the address bar (the cookie carries it from now on).
                            headers.CacheControl <- "no-store"
                            ctx.Response.Redirect("/", false)
                        | "/"
                        | "/index.html" ->
                            headers.CacheControl <- "no-store"
                            do! write ctx 200 "text/html; charset=utf-8" (page.Value.Replace("{{TOKEN}}", token))
                        | "/api/state" -> do! json ctx (desk.StateJson())
                        | "/export/labels.csv" ->
                            headers.ContentDisposition <- "attachment; filename=labels.csv"

                            do!
                                write
                                    ctx
                                    200
                                    "text/csv; charset=utf-8"
                                    (Exports.labelsCsv desk.PoolImages (desk.Labels()))
                        | "/export/label-studio.json" ->
                            match desk.PendingWithProbabilities() with
                            | None -> do! text ctx 409 "no batch is being labelled"
                            | Some(b, p) ->
                                let baseUrl = $"{request.Scheme}://{request.Host.Value}"

                                headers.ContentDisposition <- "attachment; filename=label-studio-tasks.json"

                                do!
                                    json
                                        ctx
                                        (Exports.labelStudioTasks desk.PoolImages b p $"waal round {b.Round}" (fun i ->
                                            $"{baseUrl}/image/{i}"))
                        | p when p.StartsWith "/image/" ->
                            let digits = p.Substring "/image/".Length

                            match
                                (if digits.Length > 0 && digits.Length <= 9 && Seq.forall Char.IsAsciiDigit digits then
                                     desk.ImageFile(int digits)
                                 else
                                     None)
                            with
                            | Some file ->
                                // The pool's files were checked when it was read; what is there now is read the
                                // same way (a regular file within the image cap), never followed into a device.
                                match Files.readBytes "an image file" Files.Limits.imageBytes file with
                                | Error e -> do! text ctx 404 $"pool index {digits}: {DataError.line e}"
                                | Ok bytes ->
                                    let kind =
                                        match contentTypes.TryGetValue(Path.GetExtension(file).ToLowerInvariant()) with
                                        | true, t -> t
                                        | _ -> "application/octet-stream"

                                    headers.CacheControl <- "private, max-age=3600"
                                    ctx.Response.ContentType <- kind
                                    do! ctx.Response.Body.WriteAsync(bytes, 0, bytes.Length)
                            | None -> do! text ctx 404 $"no image with pool index '{digits}'"
                        | _ -> do! text ctx 404 $"not found: {path}"
                    else
                        do! text ctx 405 $"method {request.Method} is not allowed"
            }

        app.Run(RequestDelegate handle)
        do! app.StartAsync()

        let address =
            app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>().Addresses
            |> Seq.head

        port.Value <- Uri(address).Port

        let shown =
            match binding.Host with
            | "0.0.0.0" -> "127.0.0.1"
            | "::" -> "[::1]"
            | h when h.Contains ':' -> $"[{h}]"
            | h -> h

        let baseUrl = $"http://{shown}:{port.Value}"

        return
            {
                Url = $"{baseUrl}/?token={token}"
                BaseUrl = baseUrl
                Token = token
                Stop = fun () -> app.StopAsync()
            }
    }

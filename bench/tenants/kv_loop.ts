// Sequential KV puts then gets from inside a tenant; reports ops/s.
interface KV {
  put(k: string, v: string): Promise<void>;
  get(k: string): Promise<string | null>;
}
export default {
  async fetch(req: Request, env: { KV: KV }) {
    const n = Number(new URL(req.url).searchParams.get("n") ?? 1000);
    const value = "x".repeat(100);
    let t0 = performance.now();
    for (let i = 0; i < n; i++) await env.KV.put(`k${i}`, value);
    const putOps = n / ((performance.now() - t0) / 1000);
    t0 = performance.now();
    for (let i = 0; i < n; i++) await env.KV.get(`k${i}`);
    const getOps = n / ((performance.now() - t0) / 1000);
    return Response.json({ putOps, getOps });
  },
};

// Baseline for the RSS figure: a bare Deno process holding one idle worker.
const src = URL.createObjectURL(new Blob(["postMessage(1)"], { type: "text/javascript" }));
new Worker(src, { type: "module" });
setInterval(() => {}, 1 << 30);

/// <reference types="vitest/config" />
// The editor's build: one entry (src/main.tsx), hashed files and a manifest in dist/ that
// django-vite reads to write the <script> tags; Django serves dist/ through WhiteNoise.
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [react()],
  base: "/static/",
  build: {
    outDir: "dist",
    manifest: "manifest.json",
    sourcemap: true,
    rollupOptions: { input: "src/main.tsx" },
  },
  server: { origin: "http://127.0.0.1:5173" },
  test: {
    environment: "happy-dom",
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
  },
});

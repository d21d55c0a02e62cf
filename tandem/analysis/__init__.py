"""Reading eval files back: tables (report), the paper's section-3 study (analyze), figures."""

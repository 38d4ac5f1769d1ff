use domain::DocumentId;
use knowledge::chunking::count_tokens;
use knowledge::{Chunker, ChunkingConfig, DocBlock, DocumentInput, blocks_from_markdown};

fn sentences(topic: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("Sentence {i} explains one more detail about {topic} in plain words."))
        .collect::<Vec<_>>()
        .join(" ")
}

fn doc(blocks: Vec<DocBlock>) -> DocumentInput {
    DocumentInput {
        document_id: DocumentId::new(),
        title: "Handbook".into(),
        source_url: Some("https://example.test/handbook.pdf".into()),
        blocks,
    }
}

#[test]
fn a_short_section_is_one_chunk_with_its_citation() {
    let input = doc(vec![
        DocBlock::heading(1, "Intro", Some(1)),
        DocBlock::heading(2, "Setup", Some(2)),
        DocBlock::text("Install the agent with one command.", Some(2)),
    ]);
    let chunks = Chunker::new(ChunkingConfig::default()).unwrap().chunk(&input);
    // "Intro" has only its heading, so it is a section of its own.
    assert_eq!(chunks.len(), 2);
    let setup = &chunks[1];
    assert_eq!(setup.heading.as_deref(), Some("Intro > Setup"));
    assert_eq!(setup.page, Some(2));
    assert_eq!(setup.ordinal, 1);
    assert_eq!(setup.document_id, input.document_id);
    assert_eq!(setup.document_title, "Handbook");
    assert_eq!(setup.source_url.as_deref(), Some("https://example.test/handbook.pdf"));
    assert!(setup.content.contains("Install the agent"));
    assert_eq!(setup.token_count as usize, count_tokens(&setup.content));
}

#[test]
fn a_long_section_splits_within_the_budget_at_sentence_ends_with_overlap() {
    let text = sentences("billing", 300);
    let input = doc(vec![DocBlock::text(text.clone(), Some(3))]);
    let config = ChunkingConfig { chunk_tokens: 256, overlap_tokens: 50 };
    let chunks = Chunker::new(config).unwrap().chunk(&input);
    assert!(chunks.len() >= 10, "expected many chunks, got {}", chunks.len());
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c.ordinal as usize, i);
        assert!(c.token_count <= 256, "chunk {i} has {} tokens", c.token_count);
        assert!(c.token_count >= 100, "chunk {i} is needlessly small: {}", c.token_count);
        assert!(c.content.ends_with('.'), "chunk {i} does not end at a sentence: {:?}", c.content);
        assert_eq!(c.page, Some(3));
    }
    for pair in chunks.windows(2) {
        // The next chunk starts with text the previous one ended with.
        let head: String = pair[1].content.chars().take(40).collect();
        assert!(
            pair[0].content.contains(&head),
            "no overlap between {:?} and {:?}",
            pair[0].content,
            head
        );
    }
    // Nothing lost: the last sentence is in the last chunk.
    assert!(chunks.last().unwrap().content.contains("Sentence 299"));
}

#[test]
fn without_overlap_chunks_partition_the_text() {
    let text = sentences("passwords", 200);
    let input = doc(vec![DocBlock::text(text.clone(), None)]);
    let config = ChunkingConfig { chunk_tokens: 256, overlap_tokens: 0 };
    let chunks = Chunker::new(config).unwrap().chunk(&input);
    assert!(chunks.len() > 1);
    let joined: String = chunks.iter().map(|c| c.content.as_str()).collect::<Vec<_>>().join(" ");
    assert_eq!(
        joined.split_whitespace().collect::<Vec<_>>(),
        text.split_whitespace().collect::<Vec<_>>()
    );
}

#[test]
fn chunks_never_cross_a_heading_and_keep_the_page_they_start_on() {
    let input = doc(vec![
        DocBlock::heading(1, "Billing", Some(1)),
        DocBlock::text(sentences("invoices", 150), Some(1)),
        DocBlock::text(sentences("refunds", 150), Some(2)),
        DocBlock::heading(1, "Security", Some(3)),
        DocBlock::text("Rotate keys monthly.", Some(3)),
    ]);
    let chunks = Chunker::new(ChunkingConfig::default()).unwrap().chunk(&input);
    let security: Vec<_> =
        chunks.iter().filter(|c| c.heading.as_deref() == Some("Security")).collect();
    assert_eq!(security.len(), 1);
    assert!(security[0].content.starts_with("Security"));
    assert_eq!(security[0].page, Some(3));
    for c in chunks.iter().filter(|c| c.heading.as_deref() == Some("Billing")) {
        assert!(!c.content.contains("Rotate keys"));
        let first_sentence = c.content.split('.').next().unwrap();
        let expected = if first_sentence.contains("refunds") { 2 } else { 1 };
        assert_eq!(c.page, Some(expected), "chunk {:?}", &c.content[..60]);
    }
    assert!(
        chunks.iter().any(|c| c.page == Some(2)),
        "a chunk starting in the refunds text is on page 2"
    );
}

#[test]
fn markdown_gives_headings_paragraphs_and_pages() {
    let md = "# Guide\n\nFirst paragraph\ncontinues here.\n\n<!-- page: 2 -->\n## Details\n\n```\n# not a heading\n```\n\nLast words.\u{c}After a form feed.\n";
    let blocks = blocks_from_markdown(md);
    assert_eq!(blocks[0], DocBlock::heading(1, "Guide", None));
    assert_eq!(blocks[1], DocBlock::text("First paragraph\ncontinues here.", None));
    assert_eq!(blocks[2], DocBlock::heading(2, "Details", Some(2)));
    assert_eq!(blocks[3].text, "```\n# not a heading\n```");
    assert_eq!(blocks[3].heading_level, None);
    assert_eq!(blocks[4], DocBlock::text("Last words.", Some(2)));
    assert_eq!(blocks[5], DocBlock::text("After a form feed.", Some(3)));
    let chunks = Chunker::new(ChunkingConfig::default()).unwrap().chunk(&doc(blocks));
    assert_eq!(chunks.last().unwrap().heading.as_deref(), Some("Guide > Details"));
}

#[test]
fn sizes_outside_the_allowed_ranges_are_refused() {
    for (size, overlap) in [(255, 50), (2049, 50), (512, 201)] {
        let err = Chunker::new(ChunkingConfig { chunk_tokens: size, overlap_tokens: overlap })
            .unwrap_err();
        assert!(
            matches!(err, knowledge::KnowledgeError::InvalidConfig(_)),
            "{size}/{overlap}: {err}"
        );
    }
    assert!(Chunker::new(ChunkingConfig { chunk_tokens: 2048, overlap_tokens: 200 }).is_ok());
}

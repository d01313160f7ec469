<?xml version="1.0" encoding="UTF-8"?>
<!-- Shared by the hub's stylesheets: an address element (Ulica?, Budynek, Lokal?,
     KodPocztowy, Miejscowosc, in any namespace) as the one line the legacy registers
     keep: "Ulica 5/2, 26-600 Radom" (no street: "Miejscowosc 5, 26-600 Poczta"). -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template name="adres-w-linii">
    <xsl:param name="adres"/>
    <xsl:variable name="ulica" select="normalize-space($adres/*[local-name()='Ulica'])"/>
    <xsl:variable name="lokal" select="normalize-space($adres/*[local-name()='Lokal'])"/>
    <xsl:value-of select="$ulica"/>
    <xsl:if test="$ulica = ''">
      <xsl:value-of select="normalize-space($adres/*[local-name()='Miejscowosc'])"/>
    </xsl:if>
    <xsl:text> </xsl:text>
    <xsl:value-of select="normalize-space($adres/*[local-name()='Budynek'])"/>
    <xsl:if test="$lokal != ''">
      <xsl:value-of select="concat('/', $lokal)"/>
    </xsl:if>
    <xsl:text>, </xsl:text>
    <xsl:value-of select="normalize-space($adres/*[local-name()='KodPocztowy'])"/>
    <xsl:text> </xsl:text>
    <xsl:value-of select="normalize-space($adres/*[local-name()='Miejscowosc'])"/>
  </xsl:template>
</xsl:stylesheet>

<?xml version="1.0" encoding="UTF-8"?>
<!-- Road-lane occupation application (urn:hub:wzor:zajecie-pasa-drogowego:1, already
     valid against its schema) → the roads register's application record
     (urn:hub:legacy:drogi:wniosek:1). The register keeps codes (purpose, road category,
     element), every section as filed, the area summed per road element over all sections
     (Muenchian grouping), the total area, and the number of days, both ends included
     (EXSLT dates), which its fee calculation needs. -->
<xsl:stylesheet version="1.0"
                xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:w="urn:hub:wzor:zajecie-pasa-drogowego:1"
                xmlns:drg="urn:hub:legacy:drogi:wniosek:1"
                xmlns:date="http://exslt.org/dates-and-times"
                exclude-result-prefixes="w date">
  <xsl:include href="adres-w-linii.xsl"/>
  <xsl:output method="xml" encoding="UTF-8"/>

  <xsl:key name="element-po-rodzaju" match="w:Element" use="@rodzaj"/>

  <xsl:template match="/w:Wniosek">
    <drg:WniosekZajecie zarzadca="{normalize-space(w:Zarzadca/@teryt)}">
      <xsl:attribute name="cel">
        <xsl:call-template name="kod-celu"/>
      </xsl:attribute>
      <drg:Zarzadca><xsl:value-of select="normalize-space(w:Zarzadca)"/></drg:Zarzadca>
      <drg:DataWplywu><xsl:value-of select="w:DataZlozenia"/></drg:DataWplywu>
      <xsl:apply-templates select="w:Wnioskodawca"/>
      <xsl:apply-templates select="w:Droga"/>
      <drg:Odcinki liczba="{count(w:Odcinek)}">
        <xsl:apply-templates select="w:Odcinek"/>
      </drg:Odcinki>
      <drg:Powierzchnie>
        <xsl:for-each select="w:Odcinek/w:Element[generate-id() = generate-id(key('element-po-rodzaju', @rodzaj)[1])]">
          <drg:Powierzchnia element="{translate(@rodzaj, 'abcdefghijklmnopqrstuvwxyz-', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ_')}"
                            m2="{format-number(sum(key('element-po-rodzaju', @rodzaj)/w:Powierzchnia), '0.00')}"/>
        </xsl:for-each>
        <drg:Razem m2="{format-number(sum(w:Odcinek/w:Element/w:Powierzchnia), '0.00')}"/>
      </drg:Powierzchnie>
      <drg:Okres od="{w:Termin/w:Od}" do="{w:Termin/w:Do}"
                 dni="{date:seconds(date:difference(w:Termin/w:Od, w:Termin/w:Do)) div 86400 + 1}"/>
      <drg:Cel><xsl:value-of select="normalize-space(w:OpisCelu)"/></drg:Cel>
      <xsl:if test="w:Wykonawca">
        <drg:Wykonawca><xsl:value-of select="normalize-space(w:Wykonawca)"/></drg:Wykonawca>
      </xsl:if>
    </drg:WniosekZajecie>
  </xsl:template>

  <xsl:template name="kod-celu">
    <xsl:choose>
      <xsl:when test="@cel = 'prowadzenie-robot'">R</xsl:when>
      <xsl:when test="@cel = 'umieszczenie-urzadzen'">U</xsl:when>
      <xsl:when test="@cel = 'umieszczenie-obiektu'">O</xsl:when>
      <xsl:when test="@cel = 'umieszczenie-reklamy'">RE</xsl:when>
      <xsl:otherwise>I</xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template match="w:Wnioskodawca">
    <drg:Wnioskodawca>
      <xsl:choose>
        <xsl:when test="w:Firma">
          <xsl:attribute name="typ">firma</xsl:attribute>
          <xsl:attribute name="nip"><xsl:value-of select="w:Firma/w:NIP"/></xsl:attribute>
          <drg:Nazwa><xsl:value-of select="normalize-space(w:Firma/w:Nazwa)"/></drg:Nazwa>
        </xsl:when>
        <xsl:otherwise>
          <xsl:attribute name="typ">osoba</xsl:attribute>
          <drg:Nazwa><xsl:value-of select="normalize-space(concat(w:Osoba/w:Imie, ' ', w:Osoba/w:Nazwisko))"/></drg:Nazwa>
        </xsl:otherwise>
      </xsl:choose>
      <drg:Adres>
        <xsl:call-template name="adres-w-linii">
          <xsl:with-param name="adres" select="w:Adres"/>
        </xsl:call-template>
      </drg:Adres>
      <xsl:if test="w:Telefon">
        <drg:Telefon><xsl:value-of select="normalize-space(w:Telefon)"/></drg:Telefon>
      </xsl:if>
    </drg:Wnioskodawca>
  </xsl:template>

  <xsl:template match="w:Droga">
    <drg:Droga numer="{normalize-space(@numer)}">
      <xsl:attribute name="kategoria">
        <xsl:choose>
          <xsl:when test="@kategoria = 'krajowa'">K</xsl:when>
          <xsl:when test="@kategoria = 'wojewodzka'">W</xsl:when>
          <xsl:when test="@kategoria = 'powiatowa'">P</xsl:when>
          <xsl:otherwise>G</xsl:otherwise>
        </xsl:choose>
      </xsl:attribute>
      <xsl:value-of select="normalize-space(w:Nazwa)"/>
    </drg:Droga>
  </xsl:template>

  <xsl:template match="w:Odcinek">
    <drg:Odcinek lp="{position()}" miejscowosc="{normalize-space(w:Miejscowosc)}">
      <xsl:if test="@kmOd"><xsl:attribute name="kmOd"><xsl:value-of select="@kmOd"/></xsl:attribute></xsl:if>
      <xsl:if test="@kmDo"><xsl:attribute name="kmDo"><xsl:value-of select="@kmDo"/></xsl:attribute></xsl:if>
      <xsl:if test="w:Opis">
        <drg:Opis><xsl:value-of select="normalize-space(w:Opis)"/></drg:Opis>
      </xsl:if>
      <xsl:for-each select="w:Element">
        <drg:Zajecie element="{translate(@rodzaj, 'abcdefghijklmnopqrstuvwxyz-', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ_')}"
                     m2="{format-number(w:Powierzchnia, '0.00')}"/>
      </xsl:for-each>
    </drg:Odcinek>
  </xsl:template>
</xsl:stylesheet>
